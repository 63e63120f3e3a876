// Two replicas on one Redis: each certificate is fetched once per refresh
// (counted at the responder), staples registered on one replica reach
// watchers of the other, and the refresh survives one replica stopping.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { StapleStatus } from '@keyfleet/proto';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startOcspResponder,
  startRedis,
  type OcspResponder,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
import { startSwitchableResponder, type SwitchableResponder } from './testing/switchable-responder.js';
import { metricValue, stapleClient, waitFor } from './testing/service-helpers.js';

let redis: TestRedis;
let pki: TestPki;
let openssl: OcspResponder;
let front: SwitchableResponder;
const replicas: OcspFetchServer[] = [];
const prefix = randomPrefix('replicas');

const startReplica = () =>
  createOcspFetchServer({
    // The test responders listen on loopback.
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    security: insecureDevSecurity(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: prefix,
    logger: createLogger('replica-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    refresh: {
      refreshAtFraction: 0.05,
      jitterFraction: 0.01,
      minRefreshDelayMs: 500,
      safetyMarginMs: 10_000,
      retryInitialMs: 200,
      retryMaxMs: 800,
    },
  });

before(async () => {
  redis = await startRedis();
  const frontPort = await freePort();
  pki = createTestPki(frontPort);
  const backendPort = await freePort();
  openssl = await startOcspResponder(
    { ...pki, ocspPort: backendPort, ocspUrl: `http://127.0.0.1:${backendPort}` },
    { nextUpdateMinutes: 1 },
  );
  front = await startSwitchableResponder(frontPort, `http://127.0.0.1:${backendPort}`);
  replicas.push(await startReplica(), await startReplica());
});

after(async () => {
  for (const replica of replicas) await replica.stop();
  await front?.stop();
  await openssl?.stop();
  await redis?.stop();
  pki?.remove();
});

test('two replicas fetch each certificate once per refresh', async () => {
  const [a, b] = replicas as [OcspFetchServer, OcspFetchServer];
  const apiA = stapleClient(a.grpcPort);
  const apiB = stapleClient(b.grpcPort);
  const watcherB = apiB.watch();
  try {
    const leaves = [
      pki.leaf,
      ...['one', 'two', 'three', 'four'].map((name) => pki.issueLeaf(name, { dnsNames: [`${name}.test`] })),
    ];
    const ids: string[] = [];
    for (const leaf of leaves) ids.push((await apiA.register({ chainPem: leaf.chainPem() })).certificate!.id);

    // Registered on A, fetched by whichever replica, pushed to B's watcher.
    await waitFor('every staple pushed to a watcher of the other replica', () =>
      ids.every((id) =>
        watcherB.messages.some((m) => m.updated?.id === id && m.updated.status === StapleStatus.GOOD),
      ),
    );

    // Let several refresh rounds pass (one every ~3 s per certificate).
    const byPath = () => {
      const groups = new Map<string, number[]>();
      for (const request of front.requests)
        groups.set(request.path, [...(groups.get(request.path) ?? []), request.atMs]);
      return groups;
    };
    await waitFor(
      'three fetches of every certificate',
      () => {
        const groups = byPath();
        return groups.size === ids.length && [...groups.values()].every((times) => times.length >= 3);
      },
      30_000,
    );

    for (const [pathName, times] of byPath()) {
      for (let i = 1; i < times.length; i++) {
        const gapMs = times[i]! - times[i - 1]!;
        assert.ok(
          gapMs >= 1000,
          `${pathName.slice(0, 20)}… fetched twice within ${gapMs} ms: a duplicate fetch`,
        );
      }
    }
    // Every request the responder saw is one fetch counted by exactly one replica.
    const okFetches = async () =>
      (await metricValue(a.registry, 'keyfleet_ocsp_fetches_total', {})) +
      (await metricValue(b.registry, 'keyfleet_ocsp_fetches_total', {}));
    await waitFor(
      'the counters to catch up with the responder',
      async () => (await okFetches()) === front.requests.length,
      5000,
    );
    assert.equal(
      await metricValue(a.registry, 'keyfleet_ocsp_fetches_total', { result: 'ok' }),
      await metricValue(a.registry, 'keyfleet_ocsp_fetches_total', {}),
    );

    // One replica stops; the other carries every refresh on.
    const seen = front.requests.length;
    await a.stop();
    replicas.shift();
    await waitFor(
      'every certificate refreshed by the remaining replica',
      () => {
        const later = front.requests.slice(seen).map((r) => r.path);
        return new Set(later).size === ids.length;
      },
      30_000,
    );
    for (const id of ids) assert.equal((await apiB.get({ id })).certificate?.status, StapleStatus.GOOD);
  } finally {
    watcherB.stream.cancel();
    apiA.close();
    apiB.close();
  }
});
