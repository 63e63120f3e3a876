import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySchedule } from '../keys/key-schedule.js';
import { node128Keys } from '../keys/key-material.js';
import type { TicketKeyRecord } from '../keys/ticket-key.js';
import { TicketDecision, TicketReason } from '@keyfleet/proto';
import { TicketKeyResponder, TicketKeyResult } from './ticket-key-responder.js';
import { compileAttachOptions } from './attach-options.js';
import { sessionIdContextForRing } from './session-id-context.js';
import { staticKeySource } from './key-source.js';

const minute = 60_000;
const window = 10 * minute;
const key = (id: number, activatesAtMs: number): TicketKeyRecord => ({
  name: new Uint8Array(16).fill(id),
  secret: new Uint8Array(32).fill(id),
  publishedAtMs: activatesAtMs - minute,
  activatesAtMs,
});
const k1 = key(1, 0);
const k2 = key(2, 10 * minute);
const k3 = key(3, 20 * minute);
const schedule = new KeySchedule([k1, k2, k3], window, new Set([Buffer.alloc(16, 9).toString('hex')]));
const responder = new TicketKeyResponder();

const openCases: {
  name: string;
  ticketKey: Uint8Array;
  at: number;
  result: number;
  decision: string;
  reason: string;
}[] = [
  { name: 'ACTIVE key: use', ticketKey: k1.name, at: minute, result: 1, decision: 'USE', reason: 'OK' },
  {
    name: 'PENDING key (a peer whose clock runs ahead sealed with it): use',
    ticketKey: k2.name,
    at: 10 * minute - 1,
    result: 1,
    decision: 'USE',
    reason: 'OK',
  },
  {
    name: 'DECRYPT_ONLY key: use and renew',
    ticketKey: k1.name,
    at: 10 * minute,
    result: 2,
    decision: 'USE_RENEW',
    reason: 'KEY_RETIRED',
  },
  {
    name: 'past the decrypt window: not found',
    ticketKey: k1.name,
    at: 10 * minute + window,
    result: 0,
    decision: 'IGNORE_RENEW',
    reason: 'KEY_EXPIRED',
  },
  {
    name: 'revoked: not found',
    ticketKey: new Uint8Array(16).fill(9),
    at: minute,
    result: 0,
    decision: 'IGNORE_RENEW',
    reason: 'KEY_REVOKED',
  },
  {
    name: 'never seen: not found',
    ticketKey: new Uint8Array(16).fill(7),
    at: minute,
    result: 0,
    decision: 'IGNORE_RENEW',
    reason: 'UNKNOWN_KEY',
  },
];

for (const c of openCases) {
  test(`open: ${c.name}`, () => {
    const answer = responder.open(schedule, c.ticketKey, c.at);
    assert.equal(answer.result, c.result);
    assert.equal(TicketDecision[answer.decision], c.decision);
    assert.equal(TicketReason[answer.reason], c.reason);
    // Node reads 16-byte AES and HMAC keys whatever the result.
    assert.equal(answer.aesKey.length, 16);
    assert.equal(answer.hmacKey.length, 16);
    if (c.result !== 0) {
      const expected = node128Keys(c.ticketKey[0] === 1 ? k1.secret : k2.secret);
      assert.deepEqual(Buffer.from(answer.aesKey), Buffer.from(expected.aesKey));
      assert.deepEqual(Buffer.from(answer.hmacKey), Buffer.from(expected.hmacKey));
    }
  });
}

test('open: names never seen are not passed on (metric labels stay bounded); held names are', () => {
  for (let i = 0; i < 20; i++) {
    assert.equal(responder.open(schedule, new Uint8Array(16).fill(100 + i), 0).keyName, undefined);
  }
  assert.deepEqual(responder.open(schedule, k1.name, 10 * minute + window).keyName, k1.name);
});

test('open: without a schedule every ticket is not found', () => {
  assert.equal(responder.open(undefined, k1.name, 0).result, TicketKeyResult.NOT_FOUND);
});

test('seal: picks the ACTIVE key at each moment', () => {
  for (const [at, expected] of [
    [0, k1],
    [10 * minute - 1, k1],
    [10 * minute, k2],
    [25 * minute, k3],
  ] as const) {
    const sealed = responder.seal(schedule, at);
    assert.equal(sealed.result, TicketKeyResult.USE);
    assert.deepEqual(Buffer.from(sealed.name), Buffer.from(expected.name), `at ${at}`);
    assert.deepEqual(Buffer.from(sealed.aesKey), Buffer.from(node128Keys(expected.secret).aesKey));
  }
});

test('seal: no ticket before any key is active, or without secrets', () => {
  assert.equal(responder.seal(schedule, -1).result, TicketKeyResult.NOT_FOUND);
  assert.equal(responder.seal(undefined, 0).result, TicketKeyResult.NOT_FOUND);
  const noSecrets = new KeySchedule([{ ...k1, secret: new Uint8Array(0) }], window);
  assert.equal(responder.seal(noSecrets, 0).result, TicketKeyResult.NOT_FOUND);
  assert.equal(responder.open(noSecrets, k1.name, 0).result, TicketKeyResult.NOT_FOUND);
});

test('session-id context: one per ring, at most 32 bytes, the same on every call', () => {
  assert.equal(sessionIdContextForRing('default'), sessionIdContextForRing('default'));
  assert.notEqual(sessionIdContextForRing('default'), sessionIdContextForRing('other'));
  assert.equal(Buffer.byteLength(sessionIdContextForRing('x'.repeat(63))), 32);
});

test('compileAttachOptions: defaults, the ring context, and start-up errors', () => {
  const keys = staticKeySource([k1], window, { ring: 'edge' });
  const compiled = compileAttachOptions({ keys });
  assert.equal(compiled.sessionIdContext, sessionIdContextForRing('edge'));
  assert.equal(compiled.ticketHook, 'auto');
  assert.equal(compiled.strictMustStaple, false);
  assert.equal(compileAttachOptions({ keys, sessionIdContext: false }).sessionIdContext, undefined);
  assert.throws(() => compileAttachOptions({ keys, sessionIdContext: 'x'.repeat(33) }), /1 to 32 bytes/);
  assert.throws(() => compileAttachOptions({ keys, sessionIdContext: '' }), /1 to 32 bytes/);
  assert.throws(() => compileAttachOptions({ ticketHook: 'maybe' as 'auto' }), /ticketHook/);
  assert.throws(() => compileAttachOptions({ staticRefreshMs: 0 }), /staticRefreshMs/);
});

test('open: the validity window is honest: the same answer holds anywhere inside it', () => {
  const names = [k1.name, k2.name, k3.name, new Uint8Array(16).fill(9), new Uint8Array(16).fill(7)];
  for (let t = -minute; t < 45 * minute; t += 37_000) {
    for (const name of names) {
      const answer = responder.open(schedule, name, t);
      assert.ok(answer.validFromMs <= t && t < answer.validUntilMs, `window excludes ${t}`);
      const from = Math.max(answer.validFromMs, -2 * minute);
      const until = Math.min(answer.validUntilMs, 60 * minute);
      for (const probe of [from, (from + until) / 2, until - 1]) {
        const other = responder.open(schedule, name, probe);
        assert.equal(other.result, answer.result, `at ${probe} vs ${t}`);
        assert.equal(other.reason, answer.reason);
      }
    }
  }
});
