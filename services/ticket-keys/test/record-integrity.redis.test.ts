// Key records at rest against someone with write access to a real Redis: the
// wrap's AAD covers the times and the state, so a record whose activation time
// was changed (a revoked key's old record put back with a fresh activation
// time, its revocation deleted) no longer opens; one record that does not open
// costs that key only, never the ring, and is counted; records in the old
// format (AAD without times) are still read, and rewrap moves them over.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import { KeyStore } from '../src/store/key-store.js';
import { redisKeys } from '../src/store/redis-keys.js';
import { connect, startReplica, testKeks, type TestClient } from './ticket-keys-harness.js';

let redis: TestRedis;
let probe: Redis;
let prefix: string;
let replica: RunningTicketKeysServer;
let client: TestClient;

before(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url);
  prefix = randomPrefix('integrity');
  replica = await startReplica(redis.url, prefix);
  client = connect(replica.port);
});

after(async () => {
  client?.close();
  await replica?.stop(500);
  probe?.disconnect();
  await redis?.stop();
});

const params = (ring: string) => ({
  ring,
  rotationIntervalMs: 3_600_000,
  propagationMs: 0,
  decryptWindowMs: 12 * 3_600_000,
  ticketLifetimeMs: 0,
  maxSessionAgeMs: 0,
  bindServerName: false,
  promoteOnFullAck: false,
});

const unreadable = async (ring: string) => {
  const text = await replica.registry
    .getSingleMetricAsString('keyfleet_key_records_unreadable_total')
    .catch(() => '');
  return Number(new RegExp(`ring="${ring}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};
const names = async (ring: string) =>
  (await client.getKeySet({ ring, omitSecrets: true })).keySet!.keys.map((key) => key.name.toString('hex'));

test('a revoked key’s record put back with a fresh activation time does not open; the ring still reads', async () => {
  const ring = 'replayed';
  await client.putRing({ params: params(ring) });
  await client.rotate({ ring, reason: 'second key' });
  const keys = redisKeys(prefix).ring(ring);
  const before = await probe.hgetall(keys.keys);
  const victim = (await client.getKeySet({ ring, omitSecrets: true })).keySet!.keys.find(
    (key) => key.state === 2,
  )!;
  const victimHex = victim.name.toString('hex');
  await client.revokeKey({ ring, keyName: victim.name, reason: 'leaked' });
  assert.ok(!(await names(ring)).includes(victimHex));

  // The attacker deletes the revocation and re-inserts the old record, activating now.
  const record = JSON.parse(before[victimHex]!) as { a: number };
  record.a = Date.now();
  await probe.zrem(keys.revoked, victimHex);
  await probe.hset(keys.keys, victimHex, JSON.stringify(record));
  // A replica with no memory of the ring (just started) must not take it back.
  const fresh = new KeyStore({ redis: probe, keys: redisKeys(prefix), keks: testKeks });
  const freshNames = (await fresh.requireRing(ring)).keys.map((key) => Buffer.from(key.name).toString('hex'));
  assert.ok(!freshNames.includes(victimHex), 'the replayed key does not open');
  assert.ok(freshNames.length > 0, 'the ring still reads');
  const countBefore = await unreadable(ring);
  const after = await names(ring);
  assert.ok(!after.includes(victimHex), 'the replayed key is not served');
  assert.ok(after.length > 0, 'the ring still reads');
  assert.ok((await unreadable(ring)) > countBefore, 'the bad record is counted');
});

test('one corrupt record costs its key, not the ring; a record in the old format still reads', async () => {
  const ring = 'corrupt';
  await client.putRing({ params: params(ring) });
  await client.rotate({ ring, reason: 'second key' });
  await client.rotate({ ring, reason: 'third key' });
  const keys = redisKeys(prefix).ring(ring);
  const records = await probe.hgetall(keys.keys);
  const [broken, legacy] = Object.keys(records);
  // The old format: no version, AAD = ring | name | KEK id only.
  const secret = (await client.getKeySet({ ring, omitSecrets: false })).keySet!.keys.find(
    (key) => key.name.toString('hex') === legacy,
  )!.secret;
  const legacyJson = JSON.parse(records[legacy!]!) as { p: number; a: number };
  const sealed = testKeks.wrap(ring, Buffer.from(legacy!, 'hex'), secret);
  await probe.hset(
    keys.keys,
    legacy!,
    JSON.stringify({
      p: legacyJson.p,
      a: legacyJson.a,
      k: sealed.kekId,
      w: Buffer.from(sealed.wrapped).toString('base64'),
    }),
  );

  const brokenRecord = JSON.parse(records[broken!]!) as { w: string };
  const wrapped = Buffer.from(brokenRecord.w, 'base64');
  wrapped[wrapped.length - 1]! ^= 1;
  brokenRecord.w = wrapped.toString('base64');
  await probe.hset(keys.keys, broken!, JSON.stringify(brokenRecord));

  // A replica with no memory of the ring (just started) reads it without the corrupt key.
  const reported: string[] = [];
  const fresh = new KeyStore({
    redis: probe,
    keys: redisKeys(prefix),
    keks: testKeks,
    onUnreadableRecord: (event) => reported.push(event.keyName),
  });
  const freshKeys = (await fresh.requireRing(ring)).keys;
  const freshNames = freshKeys.map((key) => Buffer.from(key.name).toString('hex'));
  assert.ok(!freshNames.includes(broken!), 'the corrupt record is left out');
  assert.deepEqual(reported, [broken!.slice(0, 16)]);
  assert.ok(freshNames.includes(legacy!), 'the old-format record reads');
  assert.deepEqual(
    Buffer.from(freshKeys.find((key) => Buffer.from(key.name).toString('hex') === legacy)!.secret),
    Buffer.from(secret),
  );
  assert.equal(freshKeys.length, 2);

  // The running replica still holds the key: it writes the record back from memory.
  const countBefore = await unreadable(ring);
  const served = (await client.getKeySet({ ring, omitSecrets: true })).keySet!.keys;
  assert.equal(served.length, 3);
  assert.ok((await unreadable(ring)) > countBefore, 'the corrupt record is counted');
  reported.length = 0;
  assert.equal((await fresh.requireRing(ring)).keys.length, 3, 'the record opens again');
  assert.deepEqual(reported, []);

  // Rewrap moves old-format records to the current one.
  // (here the replica's write-back above already stored every key of the ring anew)
  await replica.store.rewrapAll();
  assert.equal((JSON.parse((await probe.hget(keys.keys, legacy!))!) as { v?: number }).v, 2);
  assert.ok((await names(ring)).includes(legacy!));
});
