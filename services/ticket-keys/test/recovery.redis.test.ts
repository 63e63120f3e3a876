// redis-server killed and restarted (losing its data): watchers keep their stream
// and snapshot, writes answer UNAVAILABLE, keyfleet_redis_up says so while health stays SERVING (the cache serves);
// when Redis returns, the ring comes back with the same keys, streams catch up
// once, and the rotation schedule catches up once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import { redisKeys } from '../src/store/redis-keys.js';
import {
  connect,
  eventually,
  healthOf,
  lastEpoch,
  startReplica,
  statusOf,
  watch,
  type TestClient,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let replicas: RunningTicketKeysServer[] = [];
let clients: TestClient[] = [];

before(async () => {
  redis = await startRedis();
  const prefix = randomPrefix('recovery');
  replicas = [
    await startReplica(redis.url, prefix, { runScheduler: true }),
    await startReplica(redis.url, prefix),
  ];
  clients = replicas.map((replica) => connect(replica.port));
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((replica) => replica.stop(500)));
  await redis.stop();
});

const redisUp = async (replica: RunningTicketKeysServer) =>
  (await replica.registry.getSingleMetricAsString('keyfleet_redis_up')).trim().split('\n').at(-1);

test(
  'Redis killed and restarted: replicas stay ready on their cache, streams survive, writes refuse, everything recovers once',
  { timeout: 60_000 },
  async () => {
    const intervalMs = 2000;
    await clients[0]!.putRing({
      params: {
        ring: 'rec',
        rotationIntervalMs: intervalMs,
        propagationMs: 200,
        decryptWindowMs: 60_000,
        ticketLifetimeMs: 0,
        maxSessionAgeMs: 0,
        bindServerName: false,
        promoteOnFullAck: false,
      },
    });
    const watchers = [watch(clients[0]!, 'rec', 'rec-a', 100), watch(clients[1]!, 'rec', 'rec-b', 100)];
    await eventually(() => watchers.every((w) => lastEpoch(w) > 0));
    assert.equal(await healthOf(replicas[0]!.port), 'SERVING');
    assert.equal(await redisUp(replicas[1]!), 'keyfleet_redis_up 1');

    await redis.kill();
    await eventually(
      async () => (await redisUp(replicas[1]!)) === 'keyfleet_redis_up 0',
      15_000,
      'redis_up 0',
    );
    // Both hold their rings: they stay ready (SERVING) and serve them.
    assert.equal(await healthOf(replicas[0]!.port), 'SERVING');
    assert.equal(await healthOf(replicas[1]!.port), 'SERVING');
    const held = watchers.map((w) => w.keySets.at(-1)!);
    assert.equal(held[0]!.epoch, held[1]!.epoch);

    // Writes are refused; reads are served from the last snapshot; streams stay open.
    const refused = await statusOf(clients[1]!.rotate({ ring: 'rec', reason: 'while down' }));
    assert.equal(refused.code, grpc.status.UNAVAILABLE);
    const putRefused = await statusOf(
      clients[0]!.revokeKey({ ring: 'rec', keyName: held[0]!.keys[0]!.name, reason: '' }),
    );
    assert.equal(putRefused.code, grpc.status.UNAVAILABLE);
    const cached = (await clients[1]!.getKeySet({ ring: 'rec', omitSecrets: true })).keySet!;
    assert.equal(cached.epoch, held[0]!.epoch);
    const heartbeatsBefore = watchers.map((w) => w.heartbeats.length);
    await eventually(
      () => watchers.every((w, i) => w.heartbeats.length >= heartbeatsBefore[i]! + 5),
      10_000,
      'heartbeats while down',
    );
    assert.ok(watchers.every((w) => !w.ended && w.error === undefined));

    const restartedAt = Date.now();
    await redis.restart();
    await eventually(
      async () => (await redisUp(replicas[1]!)) === 'keyfleet_redis_up 1',
      20_000,
      'redis_up 1',
    );
    assert.equal(await healthOf(replicas[1]!.port), 'SERVING');

    // The ring came back with the keys every node holds, one epoch later.
    await eventually(() => watchers.every((w) => lastEpoch(w) > held[0]!.epoch), 20_000, 'catch-up key set');
    for (const [i, watcher] of watchers.entries()) {
      const after = watcher.keySets.find((keySet) => keySet.epoch > held[i]!.epoch)!;
      assert.equal(after.epoch, held[i]!.epoch + 1, 'restored at the next epoch');
      const heldNames = held[i]!.keys.map((k) => k.name.toString('hex'));
      const afterNames = after.keys.map((k) => k.name.toString('hex'));
      assert.deepEqual(afterNames.slice(0, heldNames.length), heldNames, 'same keys as before the outage');
      const epochs = watcher.keySets.map((keySet) => keySet.epoch);
      assert.deepEqual(
        epochs,
        [...new Set(epochs)].sort((a, b) => a - b),
        'each epoch once, in order',
      );
    }

    // The schedule catches up once: a key after the restart, and no burst for the missed intervals.
    await eventually(
      async () => {
        const keySet = (await clients[0]!.getKeySet({ ring: 'rec', omitSecrets: true })).keySet!;
        return keySet.keys.some((key) => key.publishedAtMs >= restartedAt);
      },
      20_000,
      'a scheduled rotation after recovery',
    );
    await new Promise((resolve) => setTimeout(resolve, intervalMs / 2));
    const keySet = (await clients[0]!.getKeySet({ ring: 'rec', omitSecrets: true })).keySet!;
    const sincePublished = keySet.keys
      .map((key) => key.publishedAtMs)
      .filter((t) => t >= restartedAt)
      .sort((a, b) => a - b);
    for (let i = 1; i < sincePublished.length; i++) {
      assert.ok(sincePublished[i]! - sincePublished[i - 1]! >= intervalMs / 2, 'no catch-up burst');
    }

    // Writes work again.
    const rotated = await clients[1]!.rotate({ ring: 'rec', reason: 'after recovery' });
    assert.ok(rotated.keySet!.epoch > held[0]!.epoch + 1);
    await eventually(
      () => watchers.every((w) => lastEpoch(w) === rotated.keySet!.epoch),
      10_000,
      'post-recovery rotation',
    );
    for (const watcher of watchers) watcher.cancel();
  },
);

test(
  'a replica started while Redis is down serves once it answers: subscription, bootstrap ring, health',
  { timeout: 60_000 },
  async () => {
    const lateRedis = await startRedis();
    const prefix = randomPrefix('late');
    await lateRedis.kill();
    const replica = await startReplica(lateRedis.url, prefix, {
      redisStartTimeoutMs: 200,
      bootstrapRings: ['default'],
    });
    const client = connect(replica.port);
    const probe = () =>
      new Redis(lateRedis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      assert.equal(await healthOf(replica.port), 'NOT_SERVING');
      assert.equal(
        (await statusOf(client.getKeySet({ ring: 'default', omitSecrets: true }))).code,
        grpc.status.UNAVAILABLE,
      );
      await lateRedis.restart();
      await eventually(async () => (await healthOf(replica.port)) === 'SERVING', 20_000, 'SERVING');
      const keySet = (await client.getKeySet({ ring: 'default', omitSecrets: true })).keySet!;
      assert.equal(keySet.keys.length, 1);
      const redisProbe = probe();
      await redisProbe.connect();
      try {
        await eventually(
          async () => {
            const [, count] = (await redisProbe.pubsub('NUMSUB', redisKeys(prefix).changesChannel)) as [
              string,
              number,
            ];
            return Number(count) === 1;
          },
          15_000,
          'the change subscription',
        );
        // A replica that stops waiting before its connection finished the ready
        // check must still end up subscribed (a SUBSCRIBE sent then was lost).
        const hasty = await startReplica(lateRedis.url, prefix, { redisStartTimeoutMs: 0 });
        try {
          await eventually(
            async () => {
              const [, count] = (await redisProbe.pubsub('NUMSUB', redisKeys(prefix).changesChannel)) as [
                string,
                number,
              ];
              return Number(count) === 2;
            },
            15_000,
            'the second replica subscription',
          );
        } finally {
          await hasty.stop(500);
        }
      } finally {
        redisProbe.disconnect();
      }
    } finally {
      client.close();
      await replica.stop(500);
      await lateRedis.stop();
    }
  },
);
