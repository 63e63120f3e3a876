import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySchedule } from '@keyfleet/tls-engine';
import {
  planPromotion,
  planRevocation,
  planRotation,
  rotationIsDue,
  type KeyTimes,
} from './rotation-plan.js';

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;
const params = { rotationIntervalMs: hour, propagationMs: minute, decryptWindowMs: 2 * hour };

const key = (id: number, publishedAtMs: number, activatesAtMs: number): KeyTimes => ({
  name: new Uint8Array(16).fill(id),
  publishedAtMs,
  activatesAtMs,
});
const hex = (id: number) => Buffer.alloc(16, id).toString('hex');

// A ring rotating every hour: k1 at 0 (first key, active at once), k2 at 1 h, k3 at 2 h.
const k1 = key(1, 0, 0);
const k2 = key(2, hour, hour + minute);
const k3 = key(3, 2 * hour, 2 * hour + minute);

const rotations: {
  name: string;
  keys: KeyTimes[];
  at: number;
  activatesAtMs: number;
  drop: number[];
}[] = [
  { name: 'first key of a new ring', keys: [], at: 5, activatesAtMs: 5 + minute, drop: [] },
  {
    name: 'steady rotation drops nothing inside the window',
    keys: [k1, k2],
    at: 2 * hour,
    activatesAtMs: 2 * hour + minute,
    drop: [],
  },
  {
    name: 'k1 retired at 1h+1m expires at 3h+1m and is dropped after',
    keys: [k1, k2, k3],
    at: 3 * hour + minute,
    activatesAtMs: 3 * hour + 2 * minute,
    drop: [1],
  },
  {
    // Nothing rotated for a day: every older key expired, the newest stays ACTIVE.
    name: 'stalled rotation never drops the ACTIVE key',
    keys: [k1, k2, k3],
    at: 30 * hour,
    activatesAtMs: 30 * hour + minute,
    drop: [1, 2],
  },
  {
    // A key already scheduled later than now + propagation (propagation was shortened).
    name: 'activation order follows publication order',
    keys: [k1, key(2, hour, hour + 10 * minute)],
    at: hour + second,
    activatesAtMs: hour + 10 * minute + 1,
    drop: [],
  },
];

for (const row of rotations) {
  test(`rotation: ${row.name}`, () => {
    const plan = planRotation(row.keys, params, row.at);
    assert.equal(plan.activatesAtMs, row.activatesAtMs);
    assert.deepEqual([...plan.dropNamesHex].sort(), row.drop.map(hex).sort());
    // Whatever is dropped, one key still encrypts once any key had activated.
    const kept = row.keys.filter((k) => !plan.dropNamesHex.includes(Buffer.from(k.name).toString('hex')));
    const schedule = new KeySchedule(
      kept.map((k) => ({ ...k, secret: new Uint8Array(0) })),
      params.decryptWindowMs,
    );
    if (row.keys.some((k) => k.activatesAtMs <= row.at)) assert.ok(schedule.activeAt(row.at));
  });
}

const revocations: {
  name: string;
  keys: KeyTimes[];
  at: number;
  revoke: number;
  expect:
    { wasActive: boolean; revokedUntilMs: number; replacementActivatesAtMs: number | undefined } | undefined;
}[] = [
  {
    name: 'the ACTIVE key: replaced at once, remembered for a full window',
    keys: [k1, k2],
    at: 2 * hour,
    revoke: 2,
    expect: { wasActive: true, revokedUntilMs: 4 * hour, replacementActivatesAtMs: 2 * hour },
  },
  {
    name: 'a DECRYPT_ONLY key: remembered until it would have expired',
    keys: [k1, k2],
    at: 2 * hour,
    revoke: 1,
    expect: {
      wasActive: false,
      revokedUntilMs: hour + minute + 2 * hour,
      replacementActivatesAtMs: undefined,
    },
  },
  {
    name: 'a published-but-not-active key: no replacement',
    keys: [k1, k2],
    at: hour + second,
    revoke: 2,
    expect: {
      wasActive: false,
      revokedUntilMs: hour + second + 2 * hour,
      replacementActivatesAtMs: undefined,
    },
  },
  { name: 'an unknown key', keys: [k1, k2], at: 2 * hour, revoke: 9, expect: undefined },
  { name: 'an expired key', keys: [k1, k2, k3], at: 10 * hour, revoke: 1, expect: undefined },
];

for (const row of revocations) {
  test(`revocation: ${row.name}`, () => {
    const plan = planRevocation(row.keys, params, hex(row.revoke), row.at);
    if (!row.expect) return assert.equal(plan, undefined);
    assert.ok(plan);
    assert.equal(plan.nameHex, hex(row.revoke));
    assert.equal(plan.wasActive, row.expect.wasActive);
    assert.equal(plan.revokedUntilMs, row.expect.revokedUntilMs);
    assert.equal(plan.replacementActivatesAtMs, row.expect.replacementActivatesAtMs);
  });
}

test('promotion picks the earliest PENDING key and only moves activation earlier', () => {
  const pendingA = key(4, 3 * hour, 3 * hour + minute);
  const pendingB = key(5, 3 * hour + 1, 3 * hour + minute + 1);
  const plan = planPromotion([k1, k2, k3, pendingB, pendingA], params, 3 * hour + second);
  assert.deepEqual(plan, { nameHex: hex(4), activatesAtMs: 3 * hour + second });
  assert.ok(plan.activatesAtMs < pendingA.activatesAtMs);
  assert.equal(planPromotion([k1, k2], params, 2 * hour), undefined, 'nothing pending');
});

const due: { name: string; keys: KeyTimes[]; at: number; due: boolean }[] = [
  { name: 'a ring without keys', keys: [], at: 0, due: true },
  { name: 'an interval after the last publication', keys: [k1, k2], at: 2 * hour, due: true },
  {
    name: 'a job firing slightly before a full interval (grid jitter)',
    keys: [k1, k2],
    at: 2 * hour - second,
    due: true,
  },
  { name: 'half an interval after a manual rotation', keys: [k1, k2], at: hour + 30 * minute, due: false },
  {
    name: 'after a day of downtime (rotates once: the next firing is not due)',
    keys: [k1, k2],
    at: 26 * hour,
    due: true,
  },
  {
    name: 'just after that catch-up rotation',
    keys: [k1, k2, key(3, 26 * hour, 26 * hour + minute)],
    at: 26 * hour + second,
    due: false,
  },
];

for (const row of due) {
  test(`rotation due: ${row.name}`, () => {
    assert.equal(rotationIsDue(row.keys, params, row.at), row.due);
  });
}
