// Stream limits on the real ticket-keys process over mTLS: one caller opens
// 10,000 WatchKeySet streams and never reads them. Past its quota every new
// stream fails RESOURCE_EXHAUSTED, the server's memory stays bounded (the
// figure is printed), and another caller still watches and reads at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TicketKeyServiceClient, type WatchKeySetResponse } from '@keyfleet/proto';
import {
  createTestPki,
  freePort,
  startProcess,
  startRedis,
  waitForListening,
  type IssuedCertificate,
  type RunningProcess,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { newKekLine } from '../src/store/kek.js';

const mainPath = path.resolve(import.meta.dirname, '../src/main.ts');
const totalStreams = 10_000;
const streamsPerChannel = 100;
const quota = 256; // the default per-identity quota

let redis: TestRedis;
let pki: TestPki;
let service: RunningProcess;
let grpcPort: number;

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(rolesPath, JSON.stringify({ 'node:default': ['cn:greedy', 'cn:other'] }));
  const kekPath = path.join(pki.dir, 'kek');
  writeFileSync(kekPath, newKekLine('limits'), { mode: 0o600 });
  const caPath = path.join(pki.dir, 'client-ca.pem');
  writeFileSync(caPath, pki.intermediate.certPem() + pki.root.certPem());
  grpcPort = await freePort();
  const metricsPort = await freePort();
  // V8 13+ (Node 24, 26) grows its young generation with the allocation rate
  // and keeps it (on a plain tls.Server: 34 → 134 MB with 6 MB live), which
  // shows as RSS without being held by anyone. Capped here so RSS measures
  // what the server keeps for the streams, as in the engine's memory test.
  service = startProcess(process.execPath, ['--max-semi-space-size=8', '--import', 'tsx', mainPath], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      KEYFLEET_INSECURE_DEV: '',
      KEYFLEET_TLS_CERT: pki.leaf.chainPath,
      KEYFLEET_TLS_KEY: pki.leaf.keyPath,
      KEYFLEET_TLS_CLIENT_CA: caPath,
      KEYFLEET_ROLES_FILE: rolesPath,
      KEYFLEET_KEK_FILE: kekPath,
      KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'error',
    },
  });
  await waitForListening(metricsPort, 60_000).catch((error: unknown) => {
    throw new Error(`ticket-keys did not start: ${service.output()}`, { cause: error });
  });
});

after(async () => {
  await service?.stop();
  await redis?.stop();
  pki?.remove();
});

function channelFor(cert: IssuedCertificate) {
  return new TicketKeyServiceClient(
    `localhost:${grpcPort}`,
    grpc.credentials.createSsl(
      Buffer.from(pki.root.certPem()),
      Buffer.from(cert.keyPem()),
      Buffer.from(cert.chainPem()),
    ),
    // One connection per client: streams spread over many connections, as many processes would.
    { 'grpc.use_local_subchannel_pool': 1 },
  );
}

/** The server's resident memory in kB, from /proc. */
function rssKb(): number {
  const status = readFileSync(`/proc/${service.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function until(what: string, probe: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test(
  `${totalStreams} unread streams from one caller: RESOURCE_EXHAUSTED past its quota, memory bounded, others unaffected`,
  { timeout: 240_000 },
  async () => {
    const greedy = pki.issueClient('greedy');
    const other = pki.issueClient('other');
    // Warm up (the first key set, TLS, JIT) before the baseline.
    const warm = channelFor(other);
    await new Promise<void>((resolve, reject) =>
      warm.getKeySet({ ring: 'default', omitSecrets: true }, (error) => (error ? reject(error) : resolve())),
    );
    warm.close();
    const baselineKb = rssKb();

    const channels = Array.from({ length: totalStreams / streamsPerChannel }, () => channelFor(greedy));
    const outcome = { exhausted: 0, otherErrors: [] as string[] };
    const calls: grpc.ClientReadableStream<WatchKeySetResponse>[] = [];
    for (const channel of channels) {
      for (let i = 0; i < streamsPerChannel; i++) {
        const call = channel.watchKeySet({
          ring: 'default',
          nodeId: `greedy-${calls.length}`,
          heartbeatIntervalMs: 100,
        });
        call.pause(); // never read
        call.on('error', (error: grpc.ServiceError) => {
          if (error.code === grpc.status.RESOURCE_EXHAUSTED) outcome.exhausted += 1;
          else if (error.code !== grpc.status.CANCELLED)
            outcome.otherErrors.push(`${grpc.status[error.code]} ${error.details}`);
        });
        calls.push(call);
      }
    }
    await until(
      'every stream past the quota refused',
      () => outcome.exhausted >= totalStreams - quota,
      180_000,
    );
    // Heartbeats every 100 ms pile up on the unread streams for a while.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const loadedKb = rssKb();
    console.log(
      JSON.stringify({
        figure: 'ticket-keys RSS with 10,000 unread streams from one caller',
        baselineMiB: Math.round(baselineKb / 1024),
        loadedMiB: Math.round(loadedKb / 1024),
        exhausted: outcome.exhausted,
      }),
    );
    assert.equal(outcome.exhausted, totalStreams - quota);
    assert.deepEqual(outcome.otherErrors, []);
    assert.ok(
      loadedKb - baselineKb < 200 * 1024,
      `RSS grew ${Math.round((loadedKb - baselineKb) / 1024)} MiB`,
    );

    // Another caller is served at once.
    const otherChannel = channelFor(other);
    const startedAt = Date.now();
    const first = await new Promise<WatchKeySetResponse>((resolve, reject) => {
      const call = otherChannel.watchKeySet({ ring: 'default', nodeId: 'other-1', heartbeatIntervalMs: 0 });
      call.on('data', (message: WatchKeySetResponse) => {
        resolve(message);
        call.cancel();
      });
      call.on('error', (error: grpc.ServiceError) => {
        if (error.code !== grpc.status.CANCELLED) reject(error);
      });
    });
    assert.ok(first.keySet && first.keySet.keys.every((key) => key.secret.length === 32));
    assert.ok(Date.now() - startedAt < 3000, `other caller waited ${Date.now() - startedAt} ms`);

    // Closing the streams gives the quota back.
    for (const call of calls) call.cancel();
    for (const channel of channels) channel.close();
    const again = channelFor(greedy);
    const accepted = await new Promise<boolean>((resolve) => {
      const retry = () => {
        const call = again.watchKeySet({ ring: 'default', nodeId: 'greedy-again', heartbeatIntervalMs: 0 });
        call.on('data', () => {
          resolve(true);
          call.cancel();
        });
        call.on('error', (error: grpc.ServiceError) => {
          if (error.code === grpc.status.RESOURCE_EXHAUSTED) setTimeout(retry, 200);
        });
      };
      retry();
    });
    assert.ok(accepted);
    again.close();
    otherChannel.close();
  },
);
