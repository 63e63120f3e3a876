import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { TicketDecision as D, TicketReason as R, TicketStatus as S } from '@keyfleet/proto';
import { createTicketEngine, NoActiveKeyError, compileTicketEngineOptions } from './ticket-engine.js';
import { staticKeyRingSource, type TicketKeyRing } from './ticket-key-ring.js';
import { defaultTicketPolicies } from '../decisions/default-policies.js';
import type { TicketPolicy } from '../decisions/ticket-policy.js';
import { fixtureRing, hourMs, minuteMs } from './key-ring.fixture.js';

function setup(ring: TicketKeyRing | null = fixtureRing(), policies?: TicketPolicy[]) {
  let nowMs = 0;
  const registry = new Registry();
  const engine = createTicketEngine({
    ring: 'edge',
    keys: staticKeyRingSource(ring ?? undefined),
    clock: () => nowMs,
    metrics: registry,
    ...(policies ? { policies } : {}),
  });
  return {
    engine,
    registry,
    at: (ms: number) => (nowMs = ms),
    metric: async (name: string) =>
      (await registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')),
  };
}
const session = Buffer.from('s'.repeat(256));
const appdata = Buffer.from('a'.repeat(64));

test('generate seals under the ACTIVE key with the ring lifetime hint and epoch', () => {
  const { engine, at } = setup();
  at(hourMs + 2 * minuteMs);
  const generated = engine.generate(session, appdata);
  assert.deepEqual(generated.keyName, new Uint8Array(16).fill(2));
  assert.equal(generated.epoch, 3);
  assert.equal(generated.lifetimeHintMs, 12 * hourMs);
});

test('decrypt across a rotation: USE, then USE_RENEW with a replacement that keeps the issue time', async () => {
  const { engine, at, metric } = setup();
  at(1000);
  const { ticket } = engine.generate(session, appdata, { clientIdentity: 'c1' });
  at(30 * minuteMs);
  const fresh = engine.decrypt(ticket);
  assert.equal(fresh.status, S.SUCCESS);
  assert.equal(fresh.decision, D.USE);
  assert.equal(fresh.renewedTicket, undefined);
  assert.deepEqual(Buffer.from(fresh.session!), session);
  assert.deepEqual(Buffer.from(fresh.appdata!), appdata);
  assert.equal(fresh.issuedAtMs, 1000);

  at(hourMs + 5 * minuteMs);
  const retired = engine.decrypt(ticket);
  assert.equal(retired.status, S.SUCCESS_RENEW);
  assert.equal(retired.decision, D.USE_RENEW);
  assert.equal(retired.reason, R.KEY_RETIRED);
  assert.ok(retired.renewedTicket);
  const renewed = engine.decrypt(retired.renewedTicket);
  assert.equal(renewed.decision, D.USE);
  assert.deepEqual(renewed.keyName, new Uint8Array(16).fill(2));
  assert.equal(renewed.issuedAtMs, 1000, 'renewal keeps the first issue time');
  assert.deepEqual(Buffer.from(renewed.session!), session);

  const lines = await metric('keyfleet_engine_ticket_decisions_total');
  const key1 = Buffer.alloc(8, 1).toString('hex');
  assert.ok(
    lines.includes(
      `keyfleet_engine_ticket_decisions_total{ring="edge",key="${key1}",decision="USE",reason="OK"} 1`,
    ),
  );
  assert.ok(
    lines.includes(
      `keyfleet_engine_ticket_decisions_total{ring="edge",key="${key1}",decision="USE_RENEW",reason="KEY_RETIRED"} 1`,
    ),
  );
  const age = await metric('keyfleet_engine_ticket_age_seconds');
  assert.ok(age.includes('keyfleet_engine_ticket_age_seconds_count{ring="edge"} 3'));
});

test('no ticket is EMPTY → IGNORE_RENEW; garbage is NO_DECRYPT → IGNORE_RENEW; neither throws', () => {
  const { engine } = setup();
  assert.deepEqual(
    [engine.decrypt(new Uint8Array()).status, engine.decrypt(new Uint8Array()).decision],
    [S.EMPTY, D.IGNORE_RENEW],
  );
  const garbage = engine.decrypt(
    Buffer.from('not a ticket at all, but long enough to be looked at'.repeat(3)),
  );
  assert.deepEqual(
    [garbage.status, garbage.decision, garbage.reason],
    [S.NO_DECRYPT, D.IGNORE_RENEW, R.MALFORMED],
  );
  assert.equal(garbage.session, undefined);
});

test('without a key set: generate throws NoActiveKeyError, decrypt answers UNKNOWN_KEY', () => {
  const { engine } = setup(null);
  assert.throws(() => engine.generate(session, appdata), NoActiveKeyError);
  const sealed = setup().engine.generate(session, appdata).ticket;
  const result = engine.decrypt(sealed);
  assert.deepEqual([result.status, result.reason, result.epoch], [S.NO_DECRYPT, R.UNKNOWN_KEY, undefined]);
});

test('SNI binding: the ticket resumes only on the server name it was issued on', () => {
  const { engine } = setup(fixtureRing({ bindServerName: true }));
  const { ticket } = engine.generate(session, appdata, { serverName: 'A.example' });
  assert.equal(engine.decrypt(ticket, { serverName: 'a.example' }).decision, D.USE);
  const other = engine.decrypt(ticket, { serverName: 'b.example' });
  assert.deepEqual([other.status, other.decision, other.reason], [S.SUCCESS, D.IGNORE_RENEW, R.SNI_MISMATCH]);
});

test('max session age and revoked clients come from the ring and the provider', () => {
  const revoked = new Set<string>();
  const { engine, at } = setup(
    fixtureRing({ maxSessionAgeMs: 10 * minuteMs }),
    defaultTicketPolicies({ revokedClients: { isRevoked: (id) => revoked.has(id) } }),
  );
  const { ticket } = engine.generate(session, appdata, { clientIdentity: 'client-1' });
  at(5 * minuteMs);
  assert.equal(engine.decrypt(ticket).decision, D.USE);
  revoked.add('client-1');
  assert.equal(engine.decrypt(ticket).reason, R.CLIENT_REVOKED);
  revoked.clear();
  at(11 * minuteMs);
  assert.equal(engine.decrypt(ticket).reason, R.SESSION_TOO_OLD);
});

test('a ticket issued beyond the skew in the future is refused', () => {
  const { engine, at } = setup();
  at(10 * minuteMs);
  const { ticket } = engine.generate(session, appdata);
  at(10 * minuteMs - 31_000);
  assert.equal(engine.decrypt(ticket).reason, R.ISSUED_IN_FUTURE);
});

test('an illegal custom decision becomes ABORT + ILLEGAL_DECISION and is counted', async () => {
  const alwaysUse: TicketPolicy = () => ({ decision: D.USE, reason: R.OK });
  const { engine, metric } = setup(fixtureRing(), [alwaysUse]);
  const result = engine.decrypt(Buffer.alloc(100, 7));
  assert.deepEqual(
    [result.status, result.decision, result.reason],
    [S.NO_DECRYPT, D.ABORT, R.ILLEGAL_DECISION],
  );
  assert.ok(
    (await metric('keyfleet_engine_illegal_decisions_total')).includes(
      'keyfleet_engine_illegal_decisions_total{ring="edge"} 1',
    ),
  );
});

test('options are checked once, at start-up', () => {
  const keys = staticKeyRingSource(undefined);
  assert.throws(() => compileTicketEngineOptions({ ring: '', keys }), /ring is required/);
  assert.throws(() => compileTicketEngineOptions({ ring: 'r', keys, maxClockSkewMs: -1 }), /maxClockSkewMs/);
  assert.throws(() => compileTicketEngineOptions({ ring: 'r', keys, policies: [] }), /policies/);
  assert.equal(compileTicketEngineOptions({ ring: 'r', keys }).maxClockSkewMs, 30_000);
});

test('two engines (two nodes) holding the same key set decide the same for every ticket', () => {
  const a = setup();
  const b = setup();
  for (const t of [0, 30 * minuteMs, hourMs + 30_000, hourMs + minuteMs, 3 * hourMs, 14 * hourMs]) {
    a.at(t);
    b.at(t);
    const { ticket } = a.engine.generate(session, appdata);
    for (const later of [t, t + minuteMs, t + hourMs, t + 13 * hourMs]) {
      a.at(later);
      b.at(later);
      const [x, y] = [a.engine.decrypt(ticket), b.engine.decrypt(ticket)];
      assert.deepEqual(
        [x.status, x.decision, x.reason],
        [y.status, y.decision, y.reason],
        `sealed ${t} opened ${later}`,
      );
    }
  }
});
