// A Redis outage as Kubernetes sees it, with real processes: ticket-keys and
// ocsp-fetch (their main.ts) on a real redis-server that is killed for 90 s
// (KEYFLEET_TEST_OUTAGE_MS overrides). Liveness (/livez, gRPC health
// "liveness") stays OK throughout, so no probe restarts a replica and throws
// its cache away; a replica that held its cache stays ready and its watchers
// keep their keys; writes get UNAVAILABLE; replicas started during the
// outage are live but not ready, and serve once Redis is back; afterwards
// every watcher catches up with epochs only moving forward and no key lost.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import {
  freePort,
  makeTempDir,
  startProcess,
  startRedis,
  waitForListening,
  type RunningProcess,
  type TestRedis,
} from '@keyfleet/test-support';
import {
  connect,
  eventually,
  lastEpoch,
  statusOf,
  watch,
} from '../services/ticket-keys/test/ticket-keys-harness.js';
import { stapleClient } from '../services/ocsp-fetch/src/testing/service-helpers.js';

const outageMs = Number(process.env.KEYFLEET_TEST_OUTAGE_MS ?? 90_000);
const root = path.resolve(import.meta.dirname, '..');
const mains = {
  ticketKeys: path.join(root, 'services/ticket-keys/src/main.ts'),
  ocspFetch: path.join(root, 'services/ocsp-fetch/src/main.ts'),
};

let redis: TestRedis;
const stateDir = makeTempDir('outage-state');
const running: RunningProcess[] = [];

interface Service {
  process: RunningProcess;
  grpcPort: number;
  metricsPort: number;
}

async function startService(kind: keyof typeof mains): Promise<Service> {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const child = startProcess(process.execPath, ['--import', 'tsx', mains[kind]], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      KEYFLEET_INSECURE_DEV: 'true',
      KEYFLEET_STATE_DIR: stateDir.path,
      KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      KEYFLEET_KEY_PREFIX: 'outage',
      LOG_LEVEL: 'warn',
    },
  });
  running.push(child);
  await waitForListening(metricsPort, 60_000).catch((error: unknown) => {
    throw new Error(`${kind} did not start: ${child.output()}`, { cause: error });
  });
  return { process: child, grpcPort, metricsPort };
}

const httpStatus = async (service: Service, route: string) =>
  (await fetch(`http://127.0.0.1:${service.metricsPort}${route}`)).status;

async function grpcHealth(service: Service, name: string): Promise<string> {
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const client = new Health(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      (client as unknown as { check: HealthCheck }).check({ service: name }, (error, response) =>
        error ? reject(error) : resolve(String(response.status)),
      ),
    );
  } finally {
    client.close();
  }
}
type HealthCheck = (
  request: { service: string },
  callback: (error: grpc.ServiceError | null, response: { status: string | number }) => void,
) => void;

const alive = (service: Service) =>
  service.process.child.exitCode === null && service.process.child.signalCode === null;

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(running.map((child) => child.stop()));
  await redis?.stop();
  stateDir.remove();
});

test(
  `Redis down for ${outageMs / 1000} s: live throughout, caches kept, writes UNAVAILABLE, late replicas serve once it returns`,
  { timeout: outageMs + 180_000 },
  async () => {
    const keysA = await startService('ticketKeys');
    const ocspA = await startService('ocspFetch');
    await eventually(async () => (await httpStatus(keysA, '/readyz')) === 200, 30_000, 'ticket-keys ready');
    await eventually(async () => (await httpStatus(ocspA, '/readyz')) === 200, 30_000, 'ocsp-fetch ready');
    const clientA = connect(keysA.grpcPort);
    const watcher = watch(clientA, 'default', 'outage-node', 1000);
    await eventually(() => lastEpoch(watcher) > 0, 15_000, 'the first key set');
    const held = watcher.keySets.at(-1)!;
    const heldNames = held.keys.map((key) => key.name.toString('hex'));

    await redis.kill();
    const keysLate = await startService('ticketKeys');
    const ocspLate = await startService('ocspFetch');
    const outageEndsAt = Date.now() + outageMs;
    let checks = 0;
    const heartbeatsAtStart = watcher.heartbeats.length;
    while (Date.now() < outageEndsAt) {
      for (const service of [keysA, ocspA, keysLate, ocspLate]) {
        assert.ok(alive(service), `a replica exited during the outage: ${service.process.output()}`);
        assert.equal(await httpStatus(service, '/livez'), 200);
        assert.equal(await grpcHealth(service, 'liveness'), 'SERVING');
      }
      // The replica that read its rings keeps serving them; the late ones have nothing to serve yet.
      assert.equal(await httpStatus(keysA, '/readyz'), 200);
      assert.equal(await grpcHealth(keysA, ''), 'SERVING');
      for (const late of [keysLate, ocspLate]) {
        assert.equal(await httpStatus(late, '/readyz'), 503);
        assert.equal(await grpcHealth(late, ''), 'NOT_SERVING');
      }
      if (checks === 0) {
        const startedAt = Date.now();
        const refused = await statusOf(clientA.rotate({ ring: 'default', reason: 'during the outage' }));
        assert.equal(grpc.status[refused.code], 'UNAVAILABLE');
        assert.ok(Date.now() - startedAt < 10_000, 'Rotate answers promptly');
        const cached = (await clientA.getKeySet({ ring: 'default', omitSecrets: true })).keySet!;
        assert.equal(cached.epoch, held.epoch);
      }
      checks += 1;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(5000, Math.max(0, outageEndsAt - Date.now()))),
      );
    }
    assert.ok(watcher.error === undefined && !watcher.ended, 'the watch stream stayed open');
    assert.ok(watcher.heartbeats.length > heartbeatsAtStart + outageMs / 2000, 'heartbeats kept coming');
    assert.equal(lastEpoch(watcher), held.epoch, 'the watcher kept its keys');

    await redis.restart();
    for (const service of [keysA, ocspA, keysLate, ocspLate]) {
      await eventually(
        async () => (await httpStatus(service, '/readyz')) === 200,
        30_000,
        'ready after Redis returned',
      );
    }
    const clientLate = connect(keysLate.grpcPort);
    await eventually(
      async () => {
        const late = await clientLate
          .getKeySet({ ring: 'default', omitSecrets: true })
          .catch(() => undefined);
        return (
          late !== undefined && late.keySet!.epoch === lastEpoch(watcher) && late.keySet!.epoch > held.epoch
        );
      },
      30_000,
      'both replicas on one epoch above the one held',
    );
    const after = (await clientLate.getKeySet({ ring: 'default', omitSecrets: true })).keySet!;
    const afterNames = after.keys.map((key) => key.name.toString('hex'));
    for (const name of heldNames)
      assert.ok(afterNames.includes(name), 'every key the node held is still there');
    const epochs = watcher.keySets.map((keySet) => keySet.epoch);
    assert.deepEqual(
      epochs,
      [...new Set(epochs)].sort((a, b) => a - b),
      'epochs only move forward, each once',
    );
    const rotated = await clientLate.rotate({ ring: 'default', reason: 'after the outage' });
    await eventually(
      () => lastEpoch(watcher) === rotated.keySet!.epoch,
      15_000,
      'a write after the outage reaches the watcher',
    );
    const staples = stapleClient(ocspLate.grpcPort);
    assert.deepEqual((await staples.list({})).certificates, []);
    staples.close();
    watcher.cancel();
    clientA.close();
    clientLate.close();
  },
);
