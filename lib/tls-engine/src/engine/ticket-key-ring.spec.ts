import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySet } from '@keyfleet/proto';
import { createTicketKeyRing, InvalidKeySetError, ticketKeyRingFromKeySet } from './ticket-key-ring.js';
import { fixtureKey } from './key-ring.fixture.js';

const good = () =>
  KeySet.fromPartial({
    ring: 'edge',
    epoch: 2,
    params: {
      ring: 'edge',
      rotationIntervalMs: 2000,
      decryptWindowMs: 5000,
      ticketLifetimeMs: 9000,
      maxSessionAgeMs: 100,
      bindServerName: true,
    },
    keys: [1, 2].map((id) => ({
      name: Buffer.alloc(16, id),
      secret: Buffer.alloc(32, id),
      publishedAtMs: id * 10,
      activatesAtMs: id * 10,
    })),
    revokedKeyNames: [Buffer.alloc(16, 9)],
  });

test('a KeySet becomes a key ring: rules with defaults, revoked names, derived keys', () => {
  const ring = ticketKeyRingFromKeySet(good());
  assert.equal(ring.epoch, 2);
  assert.deepEqual(ring.rules, {
    rotationIntervalMs: 2000,
    decryptWindowMs: 5000,
    ticketLifetimeHintMs: 5000, // capped at the decrypt window
    maxSessionAgeMs: 100,
    bindServerName: true,
  });
  assert.equal(ring.schedule.isRevoked('09'.repeat(16)), true);
  assert.equal(ring.aeadKey('01'.repeat(16))?.bytes.length, 32);
  assert.equal(ring.aeadKey('09'.repeat(16)), undefined);
  const defaults = ticketKeyRingFromKeySet({ ...good(), params: undefined });
  assert.equal(defaults.rules.decryptWindowMs, 43_200_000);
  assert.equal(defaults.rules.rotationIntervalMs, 3_600_000);
  assert.equal(defaults.rules.bindServerName, false);
});

test('derived keys are reused across epochs for unchanged secrets, re-derived for changed ones', () => {
  const first = ticketKeyRingFromKeySet(good());
  const next = good();
  next.epoch = 3;
  next.keys[1]!.secret = Buffer.alloc(32, 0x77);
  const second = ticketKeyRingFromKeySet(next, first);
  assert.equal(second.aeadKey('01'.repeat(16)), first.aeadKey('01'.repeat(16)));
  assert.notDeepEqual(second.aeadKey('02'.repeat(16))?.bytes, first.aeadKey('02'.repeat(16))?.bytes);
});

const hostile: { name: string; mutate: (set: KeySet) => void; message: RegExp }[] = [
  { name: 'no ring', mutate: (set) => (set.ring = ''), message: /ring is empty/ },
  {
    name: 'a short name',
    mutate: (set) => (set.keys[0]!.name = Buffer.alloc(15)),
    message: /keys\[0\]\.name is 15 bytes/,
  },
  {
    name: 'a long name',
    mutate: (set) => (set.keys[1]!.name = Buffer.alloc(17)),
    message: /keys\[1\]\.name is 17 bytes/,
  },
  {
    name: 'no secret (metadata only)',
    mutate: (set) => (set.keys[0]!.secret = Buffer.alloc(0)),
    message: /cannot seal/,
  },
  {
    name: 'a huge secret',
    mutate: (set) => (set.keys[0]!.secret = Buffer.alloc(1 << 20)),
    message: /secret is 1048576 bytes/,
  },
  {
    name: 'a negative activation',
    mutate: (set) => (set.keys[0]!.activatesAtMs = -5),
    message: /activates_at_ms/,
  },
  {
    name: 'a duplicate name',
    mutate: (set) => (set.keys[1]!.name = Buffer.alloc(16, 1)),
    message: /appears twice/,
  },
];
for (const { name, mutate, message } of hostile) {
  test(`an unusable key set is refused with a message that names the field: ${name}`, () => {
    const set = good();
    mutate(set);
    assert.throws(
      () => ticketKeyRingFromKeySet(set),
      (error: Error) => {
        assert.ok(error instanceof InvalidKeySetError);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /0101010101/, 'no key bytes in the message');
        return true;
      },
    );
  });
}

test('an empty key set is a ring with no ACTIVE key, not an error', () => {
  const ring = createTicketKeyRing({ ring: 'edge', epoch: 1, keys: [] });
  assert.equal(ring.schedule.activeAt(Date.now()), undefined);
  assert.equal(
    createTicketKeyRing({ ring: 'edge', epoch: 1, keys: [fixtureKey(1, 0, 0)] }).schedule.keys.length,
    1,
  );
});
