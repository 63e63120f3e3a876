import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyState } from '@keyfleet/proto';
import type { TicketKeyRecord } from '@keyfleet/tls-engine';
import { compileRingParams } from './ring-params.js';
import { keyScheduleOfKeySet } from '@keyfleet/tls-engine';
import { toProtoKeySet, type RingState } from './key-set-view.js';

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;
const params = compileRingParams({
  ring: 'edge',
  rotationIntervalMs: hour,
  propagationMs: minute,
  decryptWindowMs: 2 * hour,
});
const key = (id: number, publishedAtMs: number, activatesAtMs: number): TicketKeyRecord => ({
  name: new Uint8Array(16).fill(id),
  secret: new Uint8Array(32).fill(100 + id),
  publishedAtMs,
  activatesAtMs,
});
const hex = (id: number) => Buffer.alloc(16, id).toString('hex');
const k1 = key(1, 0, 0);
const k2 = key(2, hour, hour + minute);
const k3 = key(3, 2 * hour, 2 * hour + minute);
const state = (keys: TicketKeyRecord[], revoked: number[] = []): RingState => ({
  params,
  epoch: 7,
  keys,
  revokedNamesHex: revoked.map(hex),
  lastRotatedAtMs: 0,
});

const views: {
  name: string;
  ring: RingState;
  at: number;
  keys: { id: number; state: KeyState; retiresAtMs: number; expiresAtMs: number }[];
}[] = [
  {
    name: 'the first key of a new ring: ACTIVE, never retires yet (0)',
    ring: state([k1]),
    at: 0,
    keys: [{ id: 1, state: KeyState.ACTIVE, retiresAtMs: 0, expiresAtMs: 0 }],
  },
  {
    name: 'a published-but-not-active key is PENDING and fixes the ACTIVE key retirement',
    ring: state([k2, k1]),
    at: hour + second,
    keys: [
      { id: 1, state: KeyState.ACTIVE, retiresAtMs: hour + minute, expiresAtMs: 3 * hour + minute },
      { id: 2, state: KeyState.PENDING, retiresAtMs: 0, expiresAtMs: 0 },
    ],
  },
  {
    name: 'an expired key is absent',
    ring: state([k1, k2, k3]),
    at: 3 * hour + minute,
    keys: [
      { id: 2, state: KeyState.DECRYPT_ONLY, retiresAtMs: 2 * hour + minute, expiresAtMs: 4 * hour + minute },
      { id: 3, state: KeyState.ACTIVE, retiresAtMs: 0, expiresAtMs: 0 },
    ],
  },
  {
    name: 'a revoked key is absent and listed by name',
    ring: state([k1, k2], [1]),
    at: 2 * hour,
    keys: [{ id: 2, state: KeyState.ACTIVE, retiresAtMs: 0, expiresAtMs: 0 }],
  },
  {
    name: 'a stalled rotation keeps the newest key ACTIVE long after',
    ring: state([k1, k2]),
    at: 100 * hour,
    keys: [{ id: 2, state: KeyState.ACTIVE, retiresAtMs: 0, expiresAtMs: 0 }],
  },
];

for (const row of views) {
  test(`KeySet view: ${row.name}`, () => {
    const keySet = toProtoKeySet(row.ring, row.at);
    assert.equal(keySet.ring, 'edge');
    assert.equal(keySet.epoch, 7);
    assert.equal(keySet.serverTimeMs, row.at);
    assert.deepEqual(
      keySet.keys.map((k) => ({
        id: k.name[0],
        state: k.state,
        retiresAtMs: k.retiresAtMs,
        expiresAtMs: k.expiresAtMs,
      })),
      row.keys,
    );
    assert.deepEqual(
      keySet.revokedKeyNames.map((n) => n.toString('hex')),
      row.ring.revokedNamesHex,
    );
    for (const k of keySet.keys) assert.equal(k.secret[0], 100 + k.name[0]!);
  });
}

test('omitSecrets leaves every secret empty', () => {
  const keySet = toProtoKeySet(state([k1, k2]), 2 * hour, { omitSecrets: true });
  assert.equal(keySet.keys.length, 2);
  for (const k of keySet.keys) assert.equal(k.secret.length, 0);
});

test('a node rebuilds the same schedule from the wire form', () => {
  const keySet = toProtoKeySet(state([k1, k2, k3], [1]), 2 * hour + 2 * minute);
  const schedule = keyScheduleOfKeySet(keySet);
  assert.equal(schedule.activeAt(2 * hour + 2 * minute)?.nameHex, hex(3));
  assert.equal(schedule.stateAt(hex(2), 2 * hour + 2 * minute), 'decrypt-only');
  assert.ok(schedule.isRevoked(hex(1)));
  assert.equal(schedule.stateAt(hex(1), 2 * hour + 2 * minute), 'gone');
});

// Two nodes hold the same set; B's clock runs propagationMs/2 behind A's.
// Whatever either encrypts with, the other can open (never NO_DECRYPT), and
// USE_RENEW (decrypt-only) only ever appears when a strictly newer key is ACTIVE.
test('two nodes whose clocks differ by propagationMs/2 always open each other’s tickets', () => {
  const keySet = toProtoKeySet(state([k1, k2, k3]), hour);
  const schedule = keyScheduleOfKeySet(keySet);
  const skew = params.propagationMs / 2;
  for (let t = hour; t <= 3 * hour; t += 7 * second) {
    for (const [sealer, opener] of [
      [t, t - skew],
      [t - skew, t],
    ] as const) {
      const sealedWith = schedule.activeAt(sealer);
      assert.ok(sealedWith);
      const seen = schedule.stateOf(sealedWith, opener);
      assert.notEqual(seen, 'gone', `at ${t}`);
      if (seen === 'decrypt-only') {
        const active = schedule.activeAt(opener);
        assert.ok(
          active && active.activatesAtMs > sealedWith.activatesAtMs,
          'renew only for a newer ACTIVE key',
        );
      }
    }
  }
});
