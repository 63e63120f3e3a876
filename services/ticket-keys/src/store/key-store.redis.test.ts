// The key store against a real redis-server: scripts, compare-and-set, revocation,
// the dump check (no secret byte anywhere in Redis) and KEK rotation via rewrap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { engineAeadKey, node128Keys, openssl256Keys } from '@keyfleet/tls-engine';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { compileRingParams } from '../schedule/ring-params.js';
import type { RingState } from '../schedule/key-set-view.js';
import type { KekRing } from './kek.js';
import { newKekLine, parseKekFile } from './kek.js';
import { KeyStore } from './key-store.js';
import { redisKeys } from './redis-keys.js';

let redis: TestRedis;
let client: Redis;
const kekA = parseKekFile(newKekLine('kek-a'));

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  await new Promise((resolve) => client.once('ready', resolve));
});
after(async () => {
  client.disconnect();
  await redis.stop();
});

function storeWith(keks: KekRing, prefix = randomPrefix('store'), clock?: () => number) {
  return { prefix, store: new KeyStore({ redis: client, keys: redisKeys(prefix), keks, clock }) };
}

const comparable = (state: RingState) => ({
  epoch: state.epoch,
  lastRotatedAtMs: state.lastRotatedAtMs,
  revoked: [...state.revokedNamesHex].sort(),
  keys: state.keys
    .map((k) => [
      Buffer.from(k.name).toString('hex'),
      Buffer.from(k.secret).toString('hex'),
      k.publishedAtMs,
      k.activatesAtMs,
    ])
    .sort(),
});

const isError = (code: ErrorCode, pattern?: RegExp) => (error: unknown) =>
  error instanceof KeyfleetError && error.code === code && (!pattern || pattern.test(error.message));

/** Every key under the prefix with its full value, whatever its type. */
async function dumpAll(prefix: string): Promise<Buffer> {
  const parts: (Buffer | string)[] = [];
  const keys = (await client.keys(`*`)).filter((k) => k.includes(prefix)).sort();
  assert.ok(keys.length > 0);
  for (const key of keys) {
    const type = await client.type(key);
    parts.push(Buffer.from(`${key} ${type}\n`));
    if (type === 'string') parts.push((await client.getBuffer(key))!);
    else if (type === 'hash')
      parts.push(...(Object.entries(await client.hgetallBuffer(key)).flat() as Buffer[]));
    else if (type === 'set') parts.push(...(await client.smembersBuffer(key)));
    else if (type === 'zset') parts.push(...(await client.zrangeBuffer(key, 0, -1)));
    else if (type === 'list') parts.push(...(await client.lrangeBuffer(key, 0, -1)));
    else if (type === 'stream') parts.push(Buffer.from(JSON.stringify(await client.xrange(key, '-', '+'))));
    parts.push((await client.dumpBuffer(key)) ?? Buffer.alloc(0));
  }
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));
}

function assertNoSecretIn(dump: Buffer, secrets: Uint8Array[]) {
  const text = dump.toString('latin1');
  for (const secret of secrets) {
    const forms = [
      Buffer.from(secret),
      Buffer.from(engineAeadKey(secret)),
      Buffer.from(openssl256Keys(secret, 'nginx').aesKey),
      Buffer.from(openssl256Keys(secret, 'nginx').hmacKey),
      Buffer.from(openssl256Keys(secret, 'haproxy').aesKey),
      Buffer.from(openssl256Keys(secret, 'haproxy').hmacKey),
      Buffer.from(node128Keys(secret).aesKey),
    ];
    for (const form of forms) {
      assert.equal(dump.indexOf(form), -1, 'raw secret bytes in Redis');
      assert.ok(!text.includes(form.toString('hex')), 'hex secret in Redis');
      assert.ok(!text.includes(form.toString('base64')), 'base64 secret in Redis');
      // Also a base64 run that starts inside the secret (alignment inside a longer blob).
      assert.ok(!text.includes(form.subarray(1, 25).toString('base64').slice(4, 28)));
    }
  }
}

test('a new ring gets one ACTIVE key at once and epoch 1; a second create leaves it alone', async () => {
  const { store } = storeWith(kekA);
  const params = compileRingParams({ ring: 'edge' });
  const first = await store.putRing(params, { createOnly: true });
  assert.deepEqual({ created: first.created, epoch: first.epoch }, { created: true, epoch: 1 });
  const again = await store.putRing(params, { createOnly: true });
  assert.deepEqual({ created: again.created, epoch: again.epoch }, { created: false, epoch: 1 });
  const state = await store.requireRing('edge');
  assert.equal(state.keys.length, 1);
  assert.equal(state.keys[0]!.secret.length, 32);
  assert.equal(state.keys[0]!.activatesAtMs, state.keys[0]!.publishedAtMs);
  const updated = await store.putRing(compileRingParams({ ring: 'edge', rotationIntervalMs: 5000 }));
  assert.equal(updated.created, false);
  assert.equal(updated.epoch, 2);
  assert.equal((await store.requireRing('edge')).params.rotationIntervalMs, 5000);
  assert.deepEqual(await store.listRingNames(), ['edge']);
});

test('rotate publishes a key propagationMs ahead, drops expired keys, and compare-and-sets the epoch', async () => {
  let now = 1_000_000;
  const { store } = storeWith(kekA, undefined, () => now);
  await store.putRing(
    compileRingParams({ ring: 'r', rotationIntervalMs: 10_000, propagationMs: 1000, decryptWindowMs: 5000 }),
  );
  now += 10_000;
  const rotated = await store.rotate('r', { expectedEpoch: 1 });
  assert.equal(rotated.result, 'ok');
  assert.equal(rotated.state.epoch, 2);
  const newest = rotated.state.keys.find(
    (k) => Buffer.from(k.name).toString('hex') === (rotated.result === 'ok' ? rotated.publishedNameHex : ''),
  );
  assert.equal(newest?.activatesAtMs, now + 1000);
  await assert.rejects(
    store.rotate('r', { expectedEpoch: 1 }),
    isError(ErrorCode.FailedPrecondition, /epoch 2/),
  );
  // The first key retires at now+1000 and expires 5 s later: the next rotation after that drops it.
  now += 20_000;
  const later = await store.rotate('r');
  assert.equal(later.state.keys.length, 2);
  // The state a rotation returns is the state Redis now holds.
  assert.deepEqual(comparable(later.state), comparable(await store.requireRing('r')));
  assert.equal(later.state.epoch, 3);
  // The scheduled job skips while the newest key is younger than an interval.
  const skipped = await store.rotate('r', { onlyIfDue: true });
  assert.equal(skipped.result, 'skipped');
  assert.equal((await store.requireRing('r')).epoch, 3);
});

test('two writers racing with the same expected epoch: exactly one wins', async (t) => {
  const { store, prefix } = storeWith(kekA);
  await store.putRing(compileRingParams({ ring: 'race' }));
  const otherClient = client.duplicate();
  t.after(() => otherClient.disconnect());
  const other = new KeyStore({ redis: otherClient, keys: redisKeys(prefix), keks: kekA });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const results = await Promise.allSettled([
    store.rotate('race', { expectedEpoch: 1 }),
    other.rotate('race', { expectedEpoch: 1 }),
    store.rotate('race', { expectedEpoch: 1 }),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results.filter((r) => r.status === 'rejected')) {
    assert.ok(isError(ErrorCode.FailedPrecondition, /epoch 2/)(r.reason));
  }
  assert.equal((await store.requireRing('race')).epoch, 2);
});

test('revoking the ACTIVE key replaces it at once and remembers the name', async () => {
  let now = 5_000_000;
  const { store } = storeWith(kekA, undefined, () => now);
  await store.putRing(compileRingParams({ ring: 'rv', rotationIntervalMs: 60_000, propagationMs: 1000 }));
  const before = await store.requireRing('rv');
  const activeHex = Buffer.from(before.keys[0]!.name).toString('hex');
  now += 10;
  const after = await store.revoke('rv', activeHex);
  assert.equal(after.epoch, before.epoch + 1);
  assert.deepEqual(after.revokedNamesHex, [activeHex]);
  assert.equal(after.keys.length, 1);
  assert.notEqual(Buffer.from(after.keys[0]!.name).toString('hex'), activeHex);
  assert.equal(after.keys[0]!.activatesAtMs, now, 'replacement is ACTIVE at once');
  await assert.rejects(store.revoke('rv', activeHex), isError(ErrorCode.NotFound));
  await assert.rejects(store.revoke('nope', activeHex), isError(ErrorCode.NotFound, /ring "nope"/));
  await assert.rejects(store.rotate('nope'), isError(ErrorCode.NotFound));
});

test('the dump check: no secret or derived key byte anywhere in Redis', async () => {
  const { store, prefix } = storeWith(kekA);
  await store.putRing(compileRingParams({ ring: 'dump', rotationIntervalMs: 1000, propagationMs: 100 }));
  for (let i = 0; i < 5; i++) await store.rotate('dump');
  const state = await store.requireRing('dump');
  await store.revoke('dump', Buffer.from(state.keys[1]!.name).toString('hex'));
  const secrets = [...state.keys, ...(await store.requireRing('dump')).keys].map((k) => k.secret);
  assert.ok(secrets.length >= 6);
  const dump = await dumpAll(prefix);
  assertNoSecretIn(dump, secrets);
  // The check can fail: a dump that does hold a secret is caught.
  assert.throws(() => assertNoSecretIn(Buffer.concat([dump, Buffer.from(secrets[0]!)]), secrets));
});

test('KEK rotation: rewrap moves every key to the newest KEK, after which the old KEK can go', async () => {
  const prefix = randomPrefix('kek');
  const oldLine = newKekLine('kek-old');
  const newLine = newKekLine('kek-new');
  const { store: oldStore } = storeWith(parseKekFile(oldLine), prefix);
  await oldStore.putRing(compileRingParams({ ring: 'k', rotationIntervalMs: 1000, propagationMs: 100 }));
  await oldStore.rotate('k');
  const secretsBefore = (await oldStore.requireRing('k')).keys.map((k) =>
    Buffer.from(k.secret).toString('hex'),
  );

  // New KEK first (wraps), old one still listed (unwraps).
  const { store: bothStore } = storeWith(parseKekFile(`${newLine}\n${oldLine}\n`), prefix);
  const result = await bothStore.rewrapAll();
  assert.deepEqual(result, { rewrapped: 2, rings: 1 });
  assert.deepEqual(await bothStore.rewrapAll(), { rewrapped: 0, rings: 1 }, 'idempotent');
  const records = await client.hgetall(redisKeys(prefix).ring('k').keys);
  for (const text of Object.values(records)) assert.equal((JSON.parse(text) as { k: string }).k, 'kek-new');

  const { store: newOnly } = storeWith(parseKekFile(newLine), prefix);
  const secretsAfter = (await newOnly.requireRing('k')).keys.map((k) =>
    Buffer.from(k.secret).toString('hex'),
  );
  assert.deepEqual(secretsAfter, secretsBefore);
  // A store that lacks the KEK a ring was wrapped under reads no key of it, and says so without bytes.
  const unreadable: { ring: string; keyName: string; reason: string }[] = [];
  const oldOnly = new KeyStore({
    redis: client,
    keys: redisKeys(prefix),
    keks: parseKekFile(oldLine),
    onUnreadableRecord: (event) => unreadable.push(event),
  });
  assert.equal((await oldOnly.requireRing('k')).keys.length, 0);
  assert.equal(unreadable.length, 2);
  assert.ok(unreadable.every((event) => event.ring === 'k' && /kek-new/.test(event.reason)));
});

test('a wrapped secret moved to another key or ring does not open', () => {
  const name = new Uint8Array(16).fill(1);
  const secret = new Uint8Array(32).fill(2);
  const sealed = kekA.wrap('a', name, secret);
  assert.deepEqual(kekA.unwrap('a', name, sealed), secret);
  assert.throws(() => kekA.unwrap('b', name, sealed));
  assert.throws(() => kekA.unwrap('a', new Uint8Array(16).fill(3), sealed));
  assert.throws(() => kekA.unwrap('a', name, { ...sealed, wrapped: sealed.wrapped.subarray(0, 10) }));
});
