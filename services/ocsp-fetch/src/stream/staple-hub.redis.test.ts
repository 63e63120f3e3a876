// The hub against a real Redis (its own subscription, the real store), with
// failures injected in the store it reads through: a change that fails or
// hangs must not stall the changes behind it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLogger } from '@keyfleet/service-kit';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { parseCertificateChain, type ParsedChain } from '../pki/certificate-chain.js';
import { CertificateStore } from '../store/certificate-store.js';
import { ocspRedisKeys } from '../store/redis-keys.js';
import type { StoredCertificate } from '../store/stored-certificate.js';
import { createTestCa, issueCertificate } from '../testing/pkijs-test-ca.js';
import { waitFor } from '../testing/service-helpers.js';
import { StapleHub, type StapleChange } from './staple-hub.js';

let redis: TestRedis;
let connection: Redis;
let subscriber: Redis;
const chains: ParsedChain[] = [];

before(async () => {
  redis = await startRedis();
  connection = new Redis(redis.url);
  subscriber = new Redis(redis.url);
  const ca = await createTestCa();
  for (const name of ['a', 'b', 'c']) {
    const leaf = await issueCertificate({
      commonName: `${name}.test`,
      issuer: ca.issuer,
      ocspUrl: 'http://127.0.0.1:9',
    });
    chains.push(await parseCertificateChain(leaf.pem() + ca.issuer.pem()));
  }
});

after(async () => {
  connection?.disconnect();
  subscriber?.disconnect();
  await redis?.stop();
});

test('changes flow in order; a failing or hanging read is caught up by a reload', async () => {
  const keys = ocspRedisKeys(randomPrefix('hub'));
  const store = new CertificateStore(connection, keys);
  let mode: 'normal' | 'hang' | 'fail' = 'normal';
  const flakyStore = {
    list: () => store.list(),
    get: (id: string): Promise<StoredCertificate | undefined> =>
      mode === 'hang'
        ? new Promise(() => {})
        : mode === 'fail'
          ? Promise.reject(new Error('injected'))
          : store.get(id),
  };
  const hub = new StapleHub({
    store: flakyStore,
    subscriber,
    changesChannel: keys.changesChannel,
    clock: Date.now,
    logger: createLogger('hub-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    expirySweepMs: 50,
    stepTimeoutMs: 300,
  });
  const changes: StapleChange[] = [];
  hub.subscribe((change) => changes.push(change));
  await hub.start();
  const [a, b, c] = chains as [ParsedChain, ParsedChain, ParsedChain];
  const seen = (id: string) => hub.certificates().some((cert) => cert.chain.id === id);
  try {
    await store.register(a, Date.now());
    await waitFor('a', () => seen(a.id));
    assert.equal(changes.at(-1)?.type, 'updated');

    mode = 'hang';
    await store.register(b, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(seen(b.id), false, 'the hanging read has not delivered b');
    mode = 'normal';
    await waitFor('b, through the reload after the step timed out', () => seen(b.id), 5000);

    mode = 'fail';
    await store.register(c, Date.now());
    await waitFor('c, through the reload after the read failed', () => seen(c.id), 5000);
    mode = 'normal';

    await store.unregister(a.id);
    await waitFor('a removed', () =>
      changes.some((change) => change.type === 'removed' && change.id === a.id),
    );
    assert.deepEqual(
      hub
        .certificates()
        .map((cert) => cert.chain.id)
        .sort(),
      [b.id, c.id].sort(),
    );
  } finally {
    hub.stop();
  }
});

test('a change whose message never arrives is caught up by the periodic reconcile', async () => {
  const keys = ocspRedisKeys(randomPrefix('hub-lost'));
  const store = new CertificateStore(connection, keys);
  // Subscribed to a channel nobody publishes on: every message is "lost".
  const hub = new StapleHub({
    store,
    subscriber,
    changesChannel: `${keys.changesChannel}:silent`,
    clock: Date.now,
    logger: createLogger('hub-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    expirySweepMs: 1000,
    reconcileEveryMs: 200,
  });
  await hub.start();
  try {
    const [a] = chains as [ParsedChain];
    await store.register(a, Date.now());
    await waitFor('a, through the reconcile', () => hub.cached(a.id) !== undefined, 5000);
  } finally {
    hub.stop();
  }
});

test('after the subscription drops, what changed meanwhile is caught up once it is live again', async () => {
  const keys = ocspRedisKeys(randomPrefix('hub-reconnect'));
  const store = new CertificateStore(connection, keys);
  const ownSubscriber = new Redis(redis.url, { retryStrategy: () => 200 });
  const hub = new StapleHub({
    store,
    subscriber: ownSubscriber,
    changesChannel: keys.changesChannel,
    clock: Date.now,
    logger: createLogger('hub-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    expirySweepMs: 1000,
    reconcileEveryMs: 3_600_000, // only the reconnect path may catch up here
  });
  await hub.start();
  try {
    const [a, b] = chains as [ParsedChain, ParsedChain];
    // Drop the subscriber's connection and register while it is down: the
    // message is published to nobody.
    const down = new Promise<void>((resolve) => ownSubscriber.once('close', () => resolve()));
    await connection.client('KILL', 'TYPE', 'pubsub');
    await down;
    await store.register(a, Date.now());
    await waitFor('a, through the catch-up after resubscribing', () => hub.cached(a.id) !== undefined, 5000);
    // And the live subscription works again.
    await store.register(b, Date.now());
    await waitFor('b, through the live subscription', () => hub.cached(b.id) !== undefined, 5000);
  } finally {
    hub.stop();
    ownSubscriber.disconnect();
  }
});
