import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySchedule, ticketLifetimeHintMs, type ScheduledKeyState } from './key-schedule.js';
import type { TicketKeyRecord } from './ticket-key.js';

const minute = 60_000;
const hour = 60 * minute;
const window = 12 * hour;

function key(id: number, publishedAtMs: number, activatesAtMs: number): TicketKeyRecord {
  return {
    name: new Uint8Array(16).fill(id),
    secret: new Uint8Array(32).fill(id),
    publishedAtMs,
    activatesAtMs,
  };
}
const hexOf = (id: number) => Buffer.alloc(16, id).toString('hex');

// Three keys published an hour apart, each active a minute after publication.
const k1 = key(1, 0, 0);
const k2 = key(2, hour, hour + minute);
const k3 = key(3, 2 * hour, 2 * hour + minute);
const steady = new KeySchedule([k3, k1, k2], window);

const cases: {
  name: string;
  at: number;
  states: [number, ScheduledKeyState][];
  active: number | undefined;
}[] = [
  {
    name: 'first key of a new ring is ACTIVE at once',
    at: 0,
    states: [
      [1, 'active'],
      [2, 'pending'],
    ],
    active: 1,
  },
  {
    name: 'published but not active is PENDING',
    at: hour + 1,
    states: [
      [1, 'active'],
      [2, 'pending'],
    ],
    active: 1,
  },
  {
    name: 'activation retires the previous key to DECRYPT_ONLY',
    at: hour + minute,
    states: [
      [1, 'decrypt-only'],
      [2, 'active'],
      [3, 'pending'],
    ],
    active: 2,
  },
  {
    name: 'a retired key opens until retiresAt + decryptWindow',
    at: hour + minute + window - 1,
    states: [
      [1, 'decrypt-only'],
      [2, 'decrypt-only'],
      [3, 'active'],
    ],
    active: 3,
  },
  {
    name: 'and is gone from then on',
    at: hour + minute + window,
    states: [
      [1, 'gone'],
      [2, 'decrypt-only'],
      [3, 'active'],
    ],
    active: 3,
  },
  {
    name: 'a stalled rotation keeps the newest activated key ACTIVE forever',
    at: 1000 * hour,
    states: [
      [1, 'gone'],
      [2, 'gone'],
      [3, 'active'],
    ],
    active: 3,
  },
  {
    name: 'a held key seen by a clock behind its publisher is PENDING, not gone',
    at: -1,
    states: [[1, 'pending']],
    active: undefined,
  },
];

for (const { name, at, states, active } of cases) {
  test(`schedule: ${name}`, () => {
    for (const [id, expected] of states) assert.equal(steady.stateAt(hexOf(id), at), expected, `key ${id}`);
    assert.equal(steady.activeAt(at)?.nameHex, active === undefined ? undefined : hexOf(active));
  });
}

test('schedule: never zero ACTIVE keys once one has activated', () => {
  for (let t = 0; t < 30 * hour; t += 7 * minute) {
    const active = steady.keys.filter((k) => steady.stateOf(k, t) === 'active');
    assert.equal(active.length, 1, `at ${t}`);
  }
});

test('schedule: DECRYPT_ONLY only while a strictly newer key is ACTIVE', () => {
  for (let t = 0; t < 30 * hour; t += 11 * minute) {
    for (const candidate of steady.keys) {
      if (steady.stateOf(candidate, t) !== 'decrypt-only') continue;
      const active = steady.activeAt(t)!;
      assert.ok(active.activatesAtMs > candidate.activatesAtMs, `at ${t}`);
    }
  }
});

test('schedule: a revoked key is gone whatever its times say, and the previous key is ACTIVE again', () => {
  const schedule = new KeySchedule([k1, k2], window, new Set([hexOf(2)]));
  assert.equal(schedule.stateAt(hexOf(2), hour + 2 * minute), 'gone');
  assert.equal(schedule.isRevoked(hexOf(2)), true);
  assert.equal(schedule.activeAt(hour + 2 * minute)?.nameHex, hexOf(1));
});

test('schedule: once issuing ends no key encrypts, and what could encrypt opens for one more window', () => {
  // Ended between k2's activation and k3's: k3 never encrypts.
  const endsAt = hour + 30 * minute;
  const ended = steady.withIssuingEndedAt(endsAt);
  assert.equal(ended.activeAt(endsAt - 1)?.nameHex, hexOf(2));
  assert.equal(ended.activeAt(endsAt), undefined);
  assert.equal(ended.activeAt(3 * hour), undefined, 'k3 activating later does not restart issuing');
  assert.equal(ended.stateAt(hexOf(2), endsAt), 'decrypt-only');
  assert.equal(ended.stateAt(hexOf(2), endsAt + window - 1), 'decrypt-only');
  assert.equal(ended.stateAt(hexOf(2), endsAt + window), 'gone');
  assert.equal(ended.stateAt(hexOf(1), hour + minute + window), 'gone', 'k1 keeps its own expiry');
  assert.equal(ended.stateAt(hexOf(3), 2 * hour), 'pending', 'a key published elsewhere still opens');
  assert.equal(ended.stateAt(hexOf(3), 2 * hour + minute + window), 'gone');
  assert.equal(steady.activeAt(endsAt)?.nameHex, hexOf(2), 'the original schedule is unchanged');
  assert.equal(ended.withIssuingEndedAt(endsAt + hour), ended, 'a later end changes nothing');
});

test('schedule: unknown names are gone', () => {
  assert.equal(steady.stateAt('00'.repeat(16), hour), 'gone');
});

test('schedule: nodes whose clocks differ by up to propagation/2 both open every ticket the other seals', () => {
  const skew = minute / 2;
  for (let trueTime = 0; trueTime < 4 * hour; trueTime += 13_000) {
    for (const [sealerClock, openerClock] of [
      [trueTime + skew, trueTime - skew],
      [trueTime - skew, trueTime + skew],
    ] as const) {
      const sealedUnder = steady.activeAt(sealerClock);
      if (!sealedUnder) continue;
      assert.notEqual(steady.stateOf(sealedUnder, openerClock), 'gone', `true time ${trueTime}`);
    }
  }
});

test('lifetime hint never exceeds the decrypt window', () => {
  assert.equal(ticketLifetimeHintMs({ ticketLifetimeMs: 0, decryptWindowMs: window }), window);
  assert.equal(ticketLifetimeHintMs({ ticketLifetimeMs: hour, decryptWindowMs: window }), hour);
  assert.equal(ticketLifetimeHintMs({ ticketLifetimeMs: 2 * window, decryptWindowMs: window }), window);
});
