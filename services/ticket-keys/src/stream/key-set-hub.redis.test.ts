// The hub's catch-up paths against a real Redis: pub/sub is at-most-once, so a
// rotation whose message is lost — the subscription was down, or the message
// never came — must still reach the ring's listeners.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLogger } from '@keyfleet/service-kit';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { compileRingParams } from '../schedule/ring-params.js';
import { newKekLine, parseKekFile } from '../store/kek.js';
import { KeyStore } from '../store/key-store.js';
import { redisKeys } from '../store/redis-keys.js';
import { KeySetHub } from './key-set-hub.js';

let redis: TestRedis;
let client: Redis;
const keks = parseKekFile(newKekLine('hub-kek'));
const logger = createLogger('hub-test', process.env.TEST_LOG_LEVEL ?? 'silent');

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  await new Promise((resolve) => client.once('ready', resolve));
});
after(async () => {
  client.disconnect();
  await redis.stop();
});

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function ringWithHub(options: { silentChannel: boolean; reconcileEveryMs: number }) {
  const keys = redisKeys(randomPrefix('hub'));
  const store = new KeyStore({ redis: client, keys, keks });
  await store.putRing(compileRingParams({ ring: 'edge' }));
  const subscriber = new Redis(redis.url, { retryStrategy: () => 200 });
  const hub = new KeySetHub({
    subscriber,
    store,
    channel: options.silentChannel ? `${keys.changesChannel}:silent` : keys.changesChannel,
    logger,
    reconcileEveryMs: options.reconcileEveryMs,
  });
  await hub.start();
  const epochs: number[] = [];
  hub.listen('edge', (state) => epochs.push(state.epoch));
  const close = async () => {
    await hub.close();
    subscriber.disconnect();
  };
  return { store, hub, subscriber, epochs, close };
}

test('a rotation whose message never arrives reaches listeners through the periodic reconcile', async () => {
  const ring = await ringWithHub({ silentChannel: true, reconcileEveryMs: 200 });
  try {
    const before = ring.hub.current('edge')!.epoch;
    await ring.store.rotate('edge');
    await until('the reconciled epoch', () => ring.epochs.includes(before + 1));
    assert.equal(ring.hub.current('edge')?.epoch, before + 1);
  } finally {
    await ring.close();
  }
});

test('a rotation made while the subscription was down is caught up once it is live again', async () => {
  const ring = await ringWithHub({ silentChannel: false, reconcileEveryMs: 3_600_000 });
  try {
    const before = ring.hub.current('edge')!.epoch;
    const down = new Promise<void>((resolve) => ring.subscriber.once('close', () => resolve()));
    await client.client('KILL', 'TYPE', 'pubsub');
    await down;
    await ring.store.rotate('edge');
    await until('the caught-up epoch', () => ring.epochs.includes(before + 1));
    await ring.store.rotate('edge');
    await until('the live epoch after that', () => ring.epochs.includes(before + 2));
  } finally {
    await ring.close();
  }
});
