import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TicketDecision as D, TicketReason as R, TicketStatus as S } from '@keyfleet/proto';
import { defaultTicketPolicies } from './default-policies.js';
import {
  composePolicies,
  enforceLegalDecision,
  type PolicyInput,
  type TicketPolicy,
} from './ticket-policy.js';

const minute = 60_000;
const now = 100 * minute;
const revoked = new Set(['bad-client']);
const decide = composePolicies(
  defaultTicketPolicies({ revokedClients: { isRevoked: (id) => revoked.has(id) } }),
);

const base: PolicyInput = {
  status: S.SUCCESS,
  reason: R.OK,
  keyState: 'active',
  issuedAtMs: now - minute,
  nowMs: now,
  bound: {},
  connection: { serverName: 'a.example' },
  ring: { maxSessionAgeMs: 0, bindServerName: false, maxClockSkewMs: 30_000 },
};
const withRing = (ring: Partial<PolicyInput['ring']>) => ({ ring: { ...base.ring, ...ring } });

// The default decision table (README "Tickets and decisions"), row by row.
const table: { name: string; input: Partial<PolicyInput>; decision: D; reason: R }[] = [
  { name: 'ACTIVE key → USE', input: {}, decision: D.USE, reason: R.OK },
  { name: 'PENDING key → USE', input: { keyState: 'pending' }, decision: D.USE, reason: R.OK },
  {
    name: 'DECRYPT_ONLY key → USE_RENEW',
    input: { status: S.SUCCESS_RENEW, reason: R.KEY_RETIRED, keyState: 'decrypt-only' },
    decision: D.USE_RENEW,
    reason: R.KEY_RETIRED,
  },
  {
    name: 'no ticket → IGNORE_RENEW',
    input: { status: S.EMPTY, reason: R.EMPTY, keyState: undefined, issuedAtMs: undefined },
    decision: D.IGNORE_RENEW,
    reason: R.EMPTY,
  },
  ...[R.UNKNOWN_KEY, R.KEY_EXPIRED, R.KEY_REVOKED, R.AUTH_FAILED, R.MALFORMED, R.TOO_LARGE].map((reason) => ({
    name: `NO_DECRYPT (${R[reason]}) → IGNORE_RENEW, reason kept`,
    input: { status: S.NO_DECRYPT, reason, keyState: undefined, issuedAtMs: undefined },
    decision: D.IGNORE_RENEW,
    reason,
  })),
  {
    name: 'session older than max_session_age_ms → IGNORE_RENEW',
    input: { issuedAtMs: now - 10 * minute - 1, ...withRing({ maxSessionAgeMs: 10 * minute }) },
    decision: D.IGNORE_RENEW,
    reason: R.SESSION_TOO_OLD,
  },
  {
    name: 'session exactly max_session_age_ms old → still USE',
    input: { issuedAtMs: now - 10 * minute, ...withRing({ maxSessionAgeMs: 10 * minute }) },
    decision: D.USE,
    reason: R.OK,
  },
  {
    name: 'max age applies to DECRYPT_ONLY tickets too',
    input: {
      status: S.SUCCESS_RENEW,
      reason: R.KEY_RETIRED,
      keyState: 'decrypt-only',
      issuedAtMs: 0,
      ...withRing({ maxSessionAgeMs: minute }),
    },
    decision: D.IGNORE_RENEW,
    reason: R.SESSION_TOO_OLD,
  },
  {
    name: 'SNI bound and equal (case-insensitive) → USE',
    input: {
      bound: { serverName: 'a.example' },
      connection: { serverName: 'A.Example' },
      ...withRing({ bindServerName: true }),
    },
    decision: D.USE,
    reason: R.OK,
  },
  {
    name: 'SNI bound and different → IGNORE_RENEW',
    input: {
      bound: { serverName: 'a.example' },
      connection: { serverName: 'b.example' },
      ...withRing({ bindServerName: true }),
    },
    decision: D.IGNORE_RENEW,
    reason: R.SNI_MISMATCH,
  },
  {
    name: 'SNI binding on, ticket issued before binding (no bound name) → IGNORE_RENEW',
    input: { bound: {}, ...withRing({ bindServerName: true }) },
    decision: D.IGNORE_RENEW,
    reason: R.SNI_MISMATCH,
  },
  {
    name: 'SNI binding off: a different SNI does not matter',
    input: { bound: { serverName: 'a.example' }, connection: { serverName: 'b.example' } },
    decision: D.USE,
    reason: R.OK,
  },
  {
    name: 'bound client identity revoked → IGNORE_RENEW',
    input: { bound: { clientIdentity: 'bad-client' } },
    decision: D.IGNORE_RENEW,
    reason: R.CLIENT_REVOKED,
  },
  {
    name: 'bound client identity fine → USE',
    input: { bound: { clientIdentity: 'good' } },
    decision: D.USE,
    reason: R.OK,
  },
  {
    name: 'issued beyond the allowed skew in the future → IGNORE_RENEW',
    input: { issuedAtMs: now + 30_001 },
    decision: D.IGNORE_RENEW,
    reason: R.ISSUED_IN_FUTURE,
  },
  {
    name: 'issued within the skew in the future → USE',
    input: { issuedAtMs: now + 30_000 },
    decision: D.USE,
    reason: R.OK,
  },
  {
    name: 'rules run in order: too old wins over SNI mismatch and revocation',
    input: {
      issuedAtMs: 0,
      bound: { serverName: 'x', clientIdentity: 'bad-client' },
      ...withRing({ maxSessionAgeMs: minute, bindServerName: true }),
    },
    decision: D.IGNORE_RENEW,
    reason: R.SESSION_TOO_OLD,
  },
  {
    name: 'appdata rules never turn a NO_DECRYPT into anything else',
    input: {
      status: S.NO_DECRYPT,
      reason: R.AUTH_FAILED,
      keyState: 'active',
      issuedAtMs: undefined,
      ...withRing({ maxSessionAgeMs: 1, bindServerName: true }),
    },
    decision: D.IGNORE_RENEW,
    reason: R.AUTH_FAILED,
  },
];

for (const row of table) {
  test(`decision table: ${row.name}`, () => {
    const input = { ...base, ...row.input };
    const verdict = enforceLegalDecision(input.status, decide(input));
    assert.deepEqual(
      { decision: D[verdict.decision], reason: R[verdict.reason], illegal: verdict.illegal },
      { decision: D[row.decision], reason: R[row.reason], illegal: false },
    );
  });
}

test('the decision is a pure function: same input, same verdict, whatever the call order', () => {
  for (const row of table) {
    const input = { ...base, ...row.input };
    assert.deepEqual(decide(input), decide(structuredClone(input)));
  }
});

// A custom policy may do anything; the engine turns illegal answers into ABORT.
const legality: { status: S; decision: D; legal: boolean }[] = [
  { status: S.SUCCESS, decision: D.USE, legal: true },
  { status: S.SUCCESS, decision: D.USE_RENEW, legal: true },
  { status: S.SUCCESS_RENEW, decision: D.USE, legal: true },
  { status: S.SUCCESS, decision: D.IGNORE, legal: true },
  { status: S.NO_DECRYPT, decision: D.ABORT, legal: true },
  { status: S.NO_DECRYPT, decision: D.IGNORE, legal: true },
  { status: S.EMPTY, decision: D.IGNORE_RENEW, legal: true },
  { status: S.NO_DECRYPT, decision: D.USE, legal: false },
  { status: S.NO_DECRYPT, decision: D.USE_RENEW, legal: false },
  { status: S.EMPTY, decision: D.USE, legal: false },
  { status: S.EMPTY, decision: D.USE_RENEW, legal: false },
  { status: S.UNSPECIFIED, decision: D.USE, legal: false },
  { status: S.SUCCESS, decision: D.UNSPECIFIED, legal: false },
  { status: S.SUCCESS, decision: 42 as D, legal: false },
];
for (const { status, decision, legal } of legality) {
  test(`legality: ${S[status]} + ${D[decision] ?? decision} is ${legal ? 'kept' : 'ABORT + ILLEGAL_DECISION'}`, () => {
    const custom: TicketPolicy = () => ({ decision, reason: R.OK });
    const verdict = enforceLegalDecision(status, composePolicies([custom])({ ...base, status }));
    if (legal) assert.deepEqual(verdict, { decision, reason: R.OK, illegal: false });
    else assert.deepEqual(verdict, { decision: D.ABORT, reason: R.ILLEGAL_DECISION, illegal: true });
  });
}
