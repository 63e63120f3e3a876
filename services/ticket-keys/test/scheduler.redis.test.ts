// Three replicas running the BullMQ rotation scheduler on a 1 s ring: one new key
// per interval, not one per replica; and promote-on-full-ack activates early.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import {
  connect,
  eventually,
  lastEpoch,
  startReplica,
  watch,
  type TestClient,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let replicas: RunningTicketKeysServer[] = [];
let clients: TestClient[] = [];

before(async () => {
  redis = await startRedis();
  const prefix = randomPrefix('sched');
  replicas = await Promise.all([0, 1, 2].map(() => startReplica(redis.url, prefix, { runScheduler: true })));
  clients = replicas.map((replica) => connect(replica.port));
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((replica) => replica.stop(500)));
  await redis.stop();
});

const params = (
  ring: string,
  extra: { rotationIntervalMs: number; propagationMs: number; promoteOnFullAck?: boolean },
) => ({
  params: {
    ring,
    decryptWindowMs: 60_000,
    ticketLifetimeMs: 0,
    maxSessionAgeMs: 0,
    bindServerName: false,
    promoteOnFullAck: false,
    ...extra,
  },
});

test(
  '3 replicas running the scheduler publish exactly one key per interval',
  { timeout: 40_000 },
  async () => {
    await clients[0]!.putRing(params('sched', { rotationIntervalMs: 1000, propagationMs: 100 }));
    // Every replica upserts the schedule (as each does at start for every ring).
    await clients[1]!.putRing(params('sched', { rotationIntervalMs: 1000, propagationMs: 100 }));
    await clients[2]!.putRing(params('sched', { rotationIntervalMs: 1000, propagationMs: 100 }));
    const watcher = watch(clients[0]!, 'sched', 'sched-node');
    await eventually(() => lastEpoch(watcher) > 0);
    // Let the schedule settle onto its grid, then observe ~5 intervals.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5200));
    const observedMs = Date.now() - startedAt;
    const keySet = (await clients[1]!.getKeySet({ ring: 'sched', omitSecrets: true })).keySet!;
    const published = keySet.keys
      .map((key) => key.publishedAtMs)
      .filter((t) => t >= startedAt && t <= startedAt + observedMs);
    // Exactly one key per interval: every gap between consecutive keys is one
    // interval (the due check allows a quarter early, scheduling a little
    // late), so a double rotation (a short gap) or a missed one (a gap of two
    // intervals) fails; and the count over the window follows from its ends.
    const sorted = [...published].sort((a, b) => a - b);
    assert.ok(sorted.length >= 4, `${sorted.length} keys in ${(observedMs / 1000).toFixed(1)} s`);
    for (let i = 1; i < sorted.length; i++) {
      const gap = sorted[i]! - sorted[i - 1]!;
      assert.ok(gap >= 750 && gap < 1500, `keys ${gap} ms apart: not one per 1000 ms interval`);
    }
    assert.equal(sorted.length, Math.round((sorted.at(-1)! - sorted[0]!) / 1000) + 1);
    // The metric counts the same rotations (summed over replicas), and skips are counted as such.
    const okTotal = (
      await Promise.all(
        replicas.map(
          async (replica) => await replica.registry.getSingleMetricAsString('keyfleet_rotations_total'),
        ),
      )
    )
      .join('\n')
      .split('\n')
      .filter((line) => line.startsWith('keyfleet_rotations_total{ring="sched",result="ok"}'))
      .reduce((sum, line) => sum + Number(line.split(' ')[1]), 0);
    assert.ok(okTotal >= published.length, `metric ok=${okTotal}`);
    watcher.cancel();
  },
);

test(
  'promote on full ack: a PENDING key activates once every live watcher holds it',
  { timeout: 30_000 },
  async () => {
    const ring = 'promo';
    // Long propagation: without promotion the new key would stay PENDING for 10 minutes.
    await clients[0]!.putRing(
      params(ring, { rotationIntervalMs: 3_600_000, propagationMs: 600_000, promoteOnFullAck: true }),
    );
    const a = watch(clients[0]!, ring, 'promo-a');
    const b = watch(clients[1]!, ring, 'promo-b');
    await eventually(() => lastEpoch(a) > 0 && lastEpoch(b) > 0);
    const rotated = await clients[2]!.rotate({ ring, reason: 'promotion test' });
    const pendingName = rotated.publishedKeyName.toString('hex');
    const epoch = rotated.keySet!.epoch;
    await eventually(() => lastEpoch(a) === epoch && lastEpoch(b) === epoch);
    const before = Date.now();
    // One node acks: not everyone holds it, so nothing is promoted.
    await clients[0]!.ackKeySet({ ring, nodeId: 'promo-a', epoch });
    const still = (await clients[0]!.getKeySet({ ring, omitSecrets: true })).keySet!;
    assert.equal(still.epoch, epoch);
    // The second ack completes coverage: the key becomes ACTIVE now, far earlier than scheduled.
    await clients[1]!.ackKeySet({ ring, nodeId: 'promo-b', epoch });
    await eventually(
      () => lastEpoch(a) === epoch + 1 && lastEpoch(b) === epoch + 1,
      10_000,
      'promotion pushed',
    );
    const promoted = a.keySets.at(-1)!.keys.find((key) => key.name.toString('hex') === pendingName)!;
    assert.ok(promoted.activatesAtMs >= before - 1000 && promoted.activatesAtMs <= Date.now());
    assert.ok(promoted.activatesAtMs < promoted.publishedAtMs + 600_000, 'never later than scheduled');
    a.cancel();
    b.cancel();
  },
);
