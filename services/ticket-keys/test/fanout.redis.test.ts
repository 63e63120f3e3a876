// Two replicas, twenty watchers, fifty rotations through RPC: every watcher sees
// every epoch, in order, over one Redis subscription per replica.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import { redisKeys } from '../src/store/redis-keys.js';
import {
  connect,
  eventually,
  lastEpoch,
  startReplica,
  watch,
  type TestClient,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let prefix: string;
let replicas: RunningTicketKeysServer[] = [];
let clients: TestClient[] = [];

before(async () => {
  redis = await startRedis();
  prefix = randomPrefix('fanout');
  replicas = await Promise.all([startReplica(redis.url, prefix), startReplica(redis.url, prefix)]);
  clients = replicas.map((replica) => connect(replica.port));
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((replica) => replica.stop(500)));
  await redis.stop();
});

test('2 replicas, 20 watchers, 50 rotations: no watcher misses an epoch', { timeout: 60_000 }, async () => {
  const put = await clients[0]!.putRing({
    params: {
      ring: 'fleet',
      rotationIntervalMs: 60_000,
      propagationMs: 1000,
      decryptWindowMs: 120_000,
      ticketLifetimeMs: 0,
      maxSessionAgeMs: 0,
      bindServerName: false,
      promoteOnFullAck: false,
    },
  });
  assert.equal(put.created, true);
  const startEpoch = put.epoch;

  const watchers = Array.from({ length: 20 }, (_, i) => watch(clients[i % 2]!, 'fleet', `node-${i}`));
  await eventually(() => watchers.every((w) => lastEpoch(w) === startEpoch), 15_000, 'first key sets');

  // One subscription per replica, however many watchers.
  const probe = new Redis(redis.url);
  try {
    await eventually(
      async () => {
        const [, subscribers] = (await probe.pubsub('NUMSUB', redisKeys(prefix).changesChannel)) as [
          string,
          number,
        ];
        return Number(subscribers) === 2;
      },
      15_000,
      'one subscription per replica',
    );
    // Still two after twenty watchers joined: the fan-out is in memory.
    const [, subscribers] = (await probe.pubsub('NUMSUB', redisKeys(prefix).changesChannel)) as [
      string,
      number,
    ];
    assert.equal(Number(subscribers), 2);
  } finally {
    probe.disconnect();
  }

  for (let i = 0; i < 50; i++) {
    const response = await clients[i % 2]!.rotate({ ring: 'fleet', reason: `test ${i}` });
    assert.equal(response.keySet?.epoch, startEpoch + i + 1);
    assert.equal(response.publishedKeyName.length, 16);
    for (const key of response.keySet.keys)
      assert.equal(key.secret.length, 0, 'Rotate answers without secrets');
    // Pace rotations like a busy operator, not a tight loop: each change gets its own message.
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
  const finalEpoch = startEpoch + 50;
  await eventually(
    () => watchers.every((w) => lastEpoch(w) === finalEpoch),
    30_000,
    'all watchers at the last epoch',
  );

  for (const [i, watcher] of watchers.entries()) {
    const epochs = watcher.keySets.map((keySet) => keySet.epoch);
    assert.deepEqual(
      epochs,
      Array.from({ length: 51 }, (_, k) => startEpoch + k),
      `watcher ${i} saw every epoch once, in order`,
    );
    assert.equal(watcher.error, undefined);
  }
  // Every watcher holds the same keys with secrets at the end.
  const last = watchers[0]!.keySets.at(-1)!;
  assert.ok(last.keys.every((key) => key.secret.length === 32));
  for (const watcher of watchers) {
    assert.deepEqual(
      watcher.keySets.at(-1)!.keys.map((key) => key.secret.toString('hex')),
      last.keys.map((key) => key.secret.toString('hex')),
    );
  }
  for (const watcher of watchers) watcher.cancel();
});

test(
  'heartbeats arrive at the requested interval and carry the epoch held',
  { timeout: 30_000 },
  async () => {
    const epoch = (await clients[1]!.getKeySet({ ring: 'fleet', omitSecrets: true })).keySet!.epoch;
    const watcher = watch(clients[1]!, 'fleet', 'hb-node', 100);
    await eventually(() => watcher.heartbeats.length >= 3, 10_000, 'three heartbeats');
    assert.ok(watcher.heartbeats.every((e) => e === epoch));
    watcher.cancel();
  },
);

test(
  'ack coverage: share of live watchers on the newest epoch, across replicas',
  { timeout: 30_000 },
  async () => {
    const ring = 'acks';
    await clients[0]!.putRing({
      params: {
        ring,
        rotationIntervalMs: 0,
        propagationMs: 0,
        decryptWindowMs: 0,
        ticketLifetimeMs: 0,
        maxSessionAgeMs: 0,
        bindServerName: false,
        promoteOnFullAck: false,
      },
    });
    const a = watch(clients[0]!, ring, 'ack-a');
    const b = watch(clients[1]!, ring, 'ack-b');
    await eventually(() => lastEpoch(a) > 0 && lastEpoch(b) > 0);
    const first = await clients[0]!.ackKeySet({ ring, nodeId: 'ack-a', epoch: lastEpoch(a) });
    assert.equal(first.ackCoverage, 0.5, 'one of two live watchers (the other on the other replica)');
    // ack-b watches on replica 1 but its ack lands on replica 0 (another connection).
    const second = await clients[0]!.ackKeySet({ ring, nodeId: 'ack-b', epoch: lastEpoch(b) });
    assert.equal(second.ackCoverage, 1);
    // Replica 1 re-announcing its watcher does not undo the ack it never saw.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const again = await clients[1]!.ackKeySet({ ring, nodeId: 'ack-a', epoch: lastEpoch(a) });
    assert.equal(again.ackCoverage, 1);

    // After a rotation nobody holds the newest epoch: the gauge falls to 0 by itself.
    const coverageGauge = async () =>
      (await replicas[1]!.registry.getSingleMetricAsString('keyfleet_ack_coverage_ratio'))
        .split('\n')
        .find((line) => line.startsWith(`keyfleet_ack_coverage_ratio{ring="${ring}"}`));
    await eventually(async () => (await coverageGauge())?.endsWith(' 1') ?? false, 10_000, 'gauge at 1');
    await clients[1]!.rotate({ ring, reason: 'coverage' });
    await eventually(async () => (await coverageGauge())?.endsWith(' 0') ?? false, 10_000, 'gauge at 0');
    a.cancel();
    b.cancel();
  },
);
