// Every keyfleet process is gone within 5 s of SIGTERM or SIGINT, the
// Kubernetes grace period the manifests set, and loses nothing on the way:
// open streams end with UNAVAILABLE (clients reconnect to another replica at
// once), a refresh stuck on a responder that never answers is cut off but its
// job stays in Redis, and a Redis that is already gone does not hold anyone.
// Real processes, a real redis-server, a responder that accepts and never answers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  RegisterCertificateRequest,
  StapleServiceClient,
  TicketKeyServiceClient,
  WatchKeySetRequest,
  WatchStaplesRequest,
} from '@keyfleet/proto';
import {
  createTestPki,
  freePort,
  makeTempDir,
  startProcess,
  startRedis,
  waitForListening,
  type RunningProcess,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';

const root = path.resolve(import.meta.dirname, '..');
const entries = {
  'ticket-keys': 'services/ticket-keys/src/main.ts',
  'ocsp-fetch': 'services/ocsp-fetch/src/main.ts',
  'engine node': 'lib/tls-engine/src/node/main.ts',
} as const;
const stateDir = makeTempDir('shutdown');

let redis: TestRedis;
let pki: TestPki;
/** An OCSP responder that takes every request and never answers it. */
let silentResponder: http.Server;
const requestsToSilentResponder: http.IncomingMessage[] = [];

before(async () => {
  redis = await startRedis();
  silentResponder = http.createServer((request) => requestsToSilentResponder.push(request));
  await new Promise<void>((resolve) => silentResponder.listen(0, '127.0.0.1', () => resolve()));
  pki = createTestPki((silentResponder.address() as AddressInfo).port);
});

after(async () => {
  silentResponder.closeAllConnections();
  silentResponder.close();
  pki.remove();
  await redis.stop();
  stateDir.remove();
});

interface Started {
  readonly name: string;
  readonly process: RunningProcess;
  readonly grpcPort: number;
  readonly metricsPort: number;
}

async function start(
  name: keyof typeof entries,
  env: Record<string, string>,
  redisUrl = redis.url,
): Promise<Started> {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const running = startProcess(process.execPath, ['--import', 'tsx', path.join(root, entries[name])], {
    cwd: root,
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      KEYFLEET_INSECURE_DEV: 'true',
      KEYFLEET_STATE_DIR: stateDir.path,
      KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'info',
      // The silent responder listens on loopback, which ocsp-fetch refuses unless allowed.
      KEYFLEET_OCSP_ALLOWED_NETWORKS: '127.0.0.0/8',
      ...env,
    },
  });
  try {
    await waitForListening(metricsPort, 30_000);
    // A service listens before it is ready (it is live while it first reads
    // Redis): calls made before /readyz answers 200 may get UNAVAILABLE.
    if (name !== 'engine node') await waitForReady(metricsPort, 30_000);
  } catch (error) {
    await running.kill();
    throw new Error(`${name} did not start:\n${running.output()}`, { cause: error });
  }
  return { name, process: running, grpcPort, metricsPort };
}

async function waitForReady(metricsPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`/readyz answered ${status} for ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Sends `signal` and resolves with the exit code and how long the exit took. */
async function signalAndTime(
  started: Started,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; ms: number }> {
  const { child } = started.process;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const sentAt = performance.now();
  child.kill(signal);
  const timeout = sleep(15_000).then(() => 'timeout' as const);
  const code = await Promise.race([exited, timeout]);
  const ms = Math.round(performance.now() - sentAt);
  console.log(`# ${started.name} exited ${ms} ms after ${signal}`);
  if (code === 'timeout') {
    await started.process.kill();
    assert.fail(`still running 15 s after ${signal}:\n${started.process.output().slice(-3000)}`);
  }
  return { code, ms };
}

/** Opens a server stream and resolves with the status it ended with. */
function streamStatus(stream: grpc.ClientReadableStream<unknown>): Promise<grpc.status> {
  return new Promise((resolve) => {
    stream.on('data', () => undefined);
    stream.on('error', (error: grpc.ServiceError) => resolve(error.code));
    stream.on('status', (status: grpc.StatusObject) => resolve(status.code));
  });
}

function firstMessage(stream: grpc.ClientReadableStream<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('data', () => resolve());
    stream.once('error', reject);
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`ticket-keys: ${signal} with a WatchKeySet stream open exits 0 within 5 s; the stream ends UNAVAILABLE`, async () => {
    const service = await start('ticket-keys', { KEYFLEET_KEY_PREFIX: `shutdown-${signal}` });
    const client = new TicketKeyServiceClient(
      `127.0.0.1:${service.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const stream = client.watchKeySet(WatchKeySetRequest.fromPartial({ ring: 'default', nodeId: 'n1' }));
      const ended = streamStatus(stream);
      await firstMessage(stream);
      const { code, ms } = await signalAndTime(service, signal);
      assert.equal(code, 0, service.process.output().slice(-2000));
      assert.ok(ms < 5000, `exited ${ms} ms after ${signal}`);
      assert.equal(await ended, grpc.status.UNAVAILABLE);
      assert.match(service.process.output(), /"msg":"stopped"/);
    } finally {
      client.close();
      await service.process.kill();
    }
  });
}

test('ocsp-fetch: SIGTERM during a refresh that never gets an answer exits 0 within 5 s; the job stays in Redis', async () => {
  const prefix = 'shutdown-ocsp';
  const service = await start('ocsp-fetch', { KEYFLEET_KEY_PREFIX: prefix });
  const client = new StapleServiceClient(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  try {
    const before = requestsToSilentResponder.length;
    await new Promise<void>((resolve, reject) =>
      client.registerCertificate(
        RegisterCertificateRequest.fromPartial({ chainPem: pki.leaf.chainPem() }),
        (error) => (error ? reject(error) : resolve()),
      ),
    );
    const stream = client.watchStaples(WatchStaplesRequest.fromPartial({ nodeId: 'shutdown-watcher' }));
    const ended = streamStatus(stream);
    await firstMessage(stream);
    // The refresh job is running: its fetch waits on the silent responder.
    const deadline = Date.now() + 15_000;
    while (requestsToSilentResponder.length === before) {
      assert.ok(Date.now() < deadline, 'the refresh never reached the responder');
      await sleep(50);
    }
    const { code, ms } = await signalAndTime(service, 'SIGTERM');
    assert.equal(code, 0, service.process.output().slice(-2000));
    assert.ok(ms < 5000, `exited ${ms} ms after SIGTERM`);
    assert.equal(await ended, grpc.status.UNAVAILABLE);
    const jobs = execFileSync(
      'redis-cli',
      ['-p', String(redis.port), '--scan', '--pattern', `${prefix}*cert-*`],
      {
        encoding: 'utf8',
      },
    );
    assert.match(jobs, /cert-[0-9a-f]+/, 'the refresh job was lost');
  } finally {
    client.close();
    await service.process.kill();
  }
});

test('both services exit within 5 s of SIGTERM when Redis is already gone', async () => {
  const ownRedis = await startRedis();
  try {
    const services = [
      await start('ticket-keys', { KEYFLEET_KEY_PREFIX: 'gone' }, ownRedis.url),
      await start('ocsp-fetch', { KEYFLEET_KEY_PREFIX: 'gone' }, ownRedis.url),
    ];
    await ownRedis.kill();
    await sleep(300); // both have seen the connection drop and are reconnecting
    const results = await Promise.all(services.map((service) => signalAndTime(service, 'SIGTERM')));
    for (const [index, { code, ms }] of results.entries()) {
      assert.equal(code, 0, services[index]!.process.output().slice(-3000));
      assert.ok(ms < 5000, `${services[index]!.name} exited ${ms} ms after SIGTERM`);
    }
  } finally {
    await ownRedis.stop();
  }
});

test('engine node: SIGTERM with a TLS connection open exits 0 within 5 s', async () => {
  const ticketKeys = await start('ticket-keys', { KEYFLEET_KEY_PREFIX: 'node-shutdown' });
  try {
    const listen = await freePort();
    const node = await start('engine node', {
      KEYFLEET_LISTEN: `127.0.0.1:${listen}`,
      KEYFLEET_NODE_ID: 'shutdown-node',
      KEYFLEET_RING: 'default',
      KEYFLEET_CERT_CHAIN: pki.leaf.chainPath,
      KEYFLEET_KEY: pki.leaf.keyPath,
      KEYFLEET_TICKET_KEYS_ADDRESS: `127.0.0.1:${ticketKeys.grpcPort}`,
      KEYFLEET_OCSP_FETCH_ADDRESS: 'off',
    });
    await waitForListening(listen, 30_000);
    // A client that finished its handshake and then says nothing: only the
    // node's grace period ends it.
    const socket = tls.connect({
      port: listen,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: pki.root.certPem(),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const { code, ms } = await signalAndTime(node, 'SIGTERM');
    assert.equal(code, 0, node.process.output().slice(-2000));
    assert.ok(ms < 5000, `exited ${ms} ms after SIGTERM`);
    await closed;
  } finally {
    await ticketKeys.process.kill();
  }
});
