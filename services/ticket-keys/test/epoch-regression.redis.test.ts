// Redis going back in time (a failover to a lagging replica, partial data
// loss): an older ring state is written straight into a real redis-server
// under running replicas, then a rotation follows. No key any node held is
// lost, no node sees its epoch go backwards, and every node converges on one set.
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
  type RecordingWatcher,
  type TestClient,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let probe: Redis;
let prefix: string;
const replicas: RunningTicketKeysServer[] = [];
const clients: TestClient[] = [];

before(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url);
  prefix = randomPrefix('regress');
  for (let i = 0; i < 2; i++) {
    const replica = await startReplica(redis.url, prefix);
    replicas.push(replica);
    clients.push(connect(replica.port));
  }
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((replica) => replica.stop(500)));
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

/** DUMP of every Redis key of the ring: an exact older state to put back later. */
async function snapshot(ring: string): Promise<[string, Buffer | null][]> {
  const keys = redisKeys(prefix).ring(ring);
  const names = [keys.params, keys.state, keys.keys, keys.revoked];
  return Promise.all(
    names.map(async (name) => [name, await probe.dumpBuffer(name)] as [string, Buffer | null]),
  );
}

async function putBack(saved: [string, Buffer | null][]): Promise<void> {
  for (const [name, dump] of saved) {
    if (dump) await probe.restore(name, 0, dump, 'REPLACE');
    else await probe.del(name);
  }
}

const names = (watcher: RecordingWatcher) =>
  new Set(watcher.keySets.flatMap((keySet) => keySet.keys.map((key) => key.name.toString('hex'))));
const namesOf = (keys: { name: Buffer }[]) => keys.map((key) => key.name.toString('hex')).sort();

function assertNeverBackwards(watcher: RecordingWatcher) {
  const epochs = watcher.keySets.map((keySet) => keySet.epoch);
  for (let i = 1; i < epochs.length; i++)
    assert.ok(epochs[i]! > epochs[i - 1]!, `epochs ${epochs.join(',')}`);
}

async function converge(ring: string, watchers: RecordingWatcher[], heldBefore: Set<string>) {
  const stored = async () => (await clients[0]!.getKeySet({ ring, omitSecrets: true })).keySet!;
  await eventually(
    async () => {
      const epoch = (await stored()).epoch;
      return watchers.every((watcher) => lastEpoch(watcher) === epoch);
    },
    15_000,
    'every watcher on the stored epoch',
  );
  const final = await stored();
  for (const watcher of watchers) {
    assertNeverBackwards(watcher);
    assert.deepEqual(namesOf(watcher.keySets.at(-1)!.keys), namesOf(final.keys), 'one set everywhere');
  }
  const finalNames = new Set(namesOf(final.keys));
  for (const name of heldBefore)
    assert.ok(finalNames.has(name), `key ${name.slice(0, 8)} a node held is kept`);
  return final;
}

test('an older ring state written into Redis, then Rotate: no held key is lost, one set everywhere', async () => {
  const ring = 'regress-a';
  await clients[0]!.putRing({ params: params(ring) });
  const watchers = [watch(clients[0]!, ring, 'node-a'), watch(clients[1]!, ring, 'node-b')];
  await eventually(() => watchers.every((w) => lastEpoch(w) > 0));
  const old = await snapshot(ring);
  const oldEpoch = lastEpoch(watchers[0]!);
  for (let i = 0; i < 3; i++) await clients[0]!.rotate({ ring, reason: `r${i}` });
  await eventually(() => watchers.every((w) => lastEpoch(w) === oldEpoch + 3), 15_000, 'three rotations');
  const held = new Set([...names(watchers[0]!), ...names(watchers[1]!)]);
  const newestEpoch = oldEpoch + 3;

  await putBack(old);
  assert.equal(Number(await probe.hget(redisKeys(prefix).ring(ring).state, 'epoch')), oldEpoch);
  const rotated = await clients[1]!.rotate({ ring, reason: 'after the regression' });
  assert.ok(
    rotated.keySet!.epoch > newestEpoch + 1,
    `epoch ${rotated.keySet!.epoch} is above ${newestEpoch}`,
  );
  const final = await converge(ring, watchers, held);
  assert.ok(namesOf(final.keys).includes(rotated.publishedKeyName.toString('hex')));
  const regressions = await replicas[1]!.registry.getSingleMetricAsString('keyfleet_epoch_regressions_total');
  assert.match(regressions, new RegExp(`ring="${ring}"\\} 1`));
  for (const watcher of watchers) watcher.cancel();
});

test('a replica that never saw the newer state rotates the older one: the others repair it', async () => {
  const ring = 'regress-b';
  await clients[0]!.putRing({ params: params(ring) });
  const watchers = [watch(clients[0]!, ring, 'node-a'), watch(clients[1]!, ring, 'node-b')];
  await eventually(() => watchers.every((w) => lastEpoch(w) > 0));
  const old = await snapshot(ring);
  const newestEpoch = lastEpoch(watchers[0]!) + 3;
  for (let i = 0; i < 3; i++) await clients[0]!.rotate({ ring, reason: `r${i}` });
  await eventually(() => watchers.every((w) => lastEpoch(w) === newestEpoch), 15_000, 'three rotations');
  const held = new Set([...names(watchers[0]!), ...names(watchers[1]!)]);

  await putBack(old);
  const fresh = await startReplica(redis.url, prefix);
  const freshClient = connect(fresh.port);
  try {
    // The fresh replica knows only the older state: its rotation lands on it.
    const rotated = await freshClient.rotate({ ring, reason: 'from the older state' });
    assert.ok(rotated.keySet!.epoch <= newestEpoch);
    const watcherC = watch(freshClient, ring, 'node-c');
    const final = await converge(
      ring,
      [...watchers, watcherC],
      new Set([...held, rotated.publishedKeyName.toString('hex')]),
    );
    assert.ok(final.epoch > newestEpoch);
    watcherC.cancel();
  } finally {
    freshClient.close();
    await fresh.stop(500);
  }
  for (const watcher of watchers) watcher.cancel();
});
