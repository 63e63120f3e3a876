// The whole stack as separate processes: redis-server, the ticket-keys and
// ocsp-fetch services (their own main entries), an `openssl ocsp` responder,
// and two engine nodes; openssl s_client is the only client. The proof
// list, end to end: cross-node resumption, rotation, decrypt window,
// revocation within a second, and staples good then revoked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  StapleServiceClient,
  TicketKeyServiceClient,
  type GetKeySetResponse,
  type ListCertificatesResponse,
  type RotateResponse,
} from '@keyfleet/proto';
import {
  createTestPki,
  freePort,
  makeTempDir,
  randomPrefix,
  runSClient,
  sessionTicketKeyName,
  startOcspResponder,
  startProcess,
  startRedis,
  waitForListening,
  type OcspResponder,
  type RunningProcess,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const decryptWindowMs = 4000;
let redis: TestRedis;
let pki: TestPki;
let responder: OcspResponder;
let dir: { path: string; remove(): void };
const processes: RunningProcess[] = [];
let keysClient: TicketKeyServiceClient;
let staplesClient: StapleServiceClient;
const nodePorts: number[] = [];
let fileCounter = 0;
const sessionFile = () => path.join(dir.path, `s-${++fileCounter}.pem`);

async function startTsx(script: string, env: Record<string, string>, port: number): Promise<RunningProcess> {
  const running = startProcess(process.execPath, ['--import', 'tsx', path.join(root, script)], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    cwd: root,
  });
  processes.push(running);
  try {
    await waitForListening(port, 30_000);
  } catch (error) {
    throw new Error(`${script} did not listen:\n${running.output()}`, { cause: error });
  }
  return running;
}

/** A unary call as a promise: `unary((done) => client.method(request, done))`. */
function unary<Response>(
  invoke: (done: (error: grpc.ServiceError | null, response: Response) => void) => unknown,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await diagnostics()}`);
    await sleep(200);
  }
}

/** What the staple service holds (no staple bytes) and what the processes said, for a failure message. */
async function diagnostics(): Promise<string> {
  const listed = await unary<ListCertificatesResponse>((done) =>
    staplesClient.listCertificates({}, done),
  ).catch((error: Error) => ({ certificates: [], error: error.message }));
  const records = listed.certificates.map((record) => ({
    id: record.id.slice(0, 16),
    status: record.status,
    staple: record.staple
      ? { certStatus: record.staple.certStatus, nextUpdateMs: record.staple.nextUpdateMs }
      : null,
    fetch: record.fetch,
  }));
  return `${JSON.stringify(records)}\n${processes.map((running) => running.output().slice(-2000)).join('\n---\n')}`;
}

before(async () => {
  dir = makeTempDir('full-stack');
  redis = await startRedis();
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki);
  const prefix = randomPrefix('fs');
  const [keysPort, staplesPort] = [await freePort(), await freePort()];
  const common = { REDIS_URL: redis.url, KEYFLEET_INSECURE_DEV: 'true', KEYFLEET_KEY_PREFIX: prefix };
  await Promise.all([
    startTsx(
      'services/ticket-keys/src/main.ts',
      {
        ...common,
        KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${keysPort}`,
        KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
        KEYFLEET_STATE_DIR: dir.path,
      },
      keysPort,
    ),
    startTsx(
      'services/ocsp-fetch/src/main.ts',
      {
        ...common,
        KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${staplesPort}`,
        KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
      },
      staplesPort,
    ),
  ]);
  keysClient = new TicketKeyServiceClient(`127.0.0.1:${keysPort}`, grpc.credentials.createInsecure());
  staplesClient = new StapleServiceClient(`127.0.0.1:${staplesPort}`, grpc.credentials.createInsecure());
  // Short propagation and decrypt window so a test can watch them pass.
  await unary((done) =>
    keysClient.putRing(
      {
        params: {
          ring: 'default',
          rotationIntervalMs: 3_600_000,
          propagationMs: 300,
          decryptWindowMs,
          ticketLifetimeMs: 0,
          maxSessionAgeMs: 0,
          bindServerName: false,
          promoteOnFullAck: false,
        },
      },
      done,
    ),
  );
  await unary((done) => staplesClient.registerCertificate({ chainPem: pki.leaf.chainPem() }, done));
  for (const name of ['node-a', 'node-b']) {
    const port = await freePort();
    const metricsPort = await freePort();
    const node = await startTsx(
      'lib/tls-engine/src/node/main.ts',
      {
        KEYFLEET_LISTEN: `127.0.0.1:${port}`,
        KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        KEYFLEET_CERT_CHAIN: pki.leaf.chainPath,
        KEYFLEET_KEY: pki.leaf.keyPath,
        KEYFLEET_TICKET_KEYS_ADDRESS: `127.0.0.1:${keysPort}`,
        KEYFLEET_OCSP_FETCH_ADDRESS: `127.0.0.1:${staplesPort}`,
        KEYFLEET_NODE_ID: name,
        KEYFLEET_INSECURE_DEV: 'true',
        KEYFLEET_STAPLE_WAIT_MS: '30000',
      },
      port,
    );
    // Ready: key set held and the first staple fetched (or given up on).
    await until(
      `${name} to be ready`,
      async () => {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => undefined);
        return response?.status === 200 || node.child.exitCode !== null;
      },
      40_000,
    );
    nodePorts.push(port);
  }
});

after(async () => {
  keysClient?.close();
  staplesClient?.close();
  for (const running of processes.reverse()) await running.stop();
  await responder?.stop();
  await redis?.stop();
  pki?.remove();
  dir?.remove();
});

async function activeKeyHex(): Promise<string> {
  const response = await unary<GetKeySetResponse>((done) =>
    keysClient.getKeySet({ ring: 'default', omitSecrets: true }, done),
  );
  const now = Date.now();
  const active = response.keySet!.keys.filter((key) => key.activatesAtMs <= now).at(-1)!;
  return Buffer.from(active.name).toString('hex');
}

test('both nodes staple a good response from the first handshake; a session from A resumes on B (TLS 1.2 and 1.3)', async () => {
  for (const port of nodePorts) {
    const result = await runSClient({ port, tls: '1.3', status: true });
    assert.ok(result.connected, result.output);
    assert.equal(result.stapleCertStatus, 'good', `${result.output}\n${await diagnostics()}`);
  }
  for (const tls of ['1.2', '1.3'] as const) {
    const file = sessionFile();
    assert.ok((await runSClient({ port: nodePorts[0]!, tls, sessOut: file })).connected);
    assert.equal(sessionTicketKeyName(file), await activeKeyHex());
    const resumed = await runSClient({ port: nodePorts[1]!, tls, sessIn: file });
    assert.ok(resumed.reused, resumed.output);
  }
});

test('Rotate: the old ticket resumes on both and is replaced under the new key; past the decrypt window it does not', async () => {
  const oldTicket = sessionFile();
  assert.ok((await runSClient({ port: nodePorts[0]!, tls: '1.3', sessOut: oldTicket })).connected);
  const rotated = await unary<RotateResponse>((done) =>
    keysClient.rotate({ ring: 'default', reason: 'full-stack test' }, done),
  );
  const newKey = Buffer.from(rotated.publishedKeyName).toString('hex');
  await until('the new key to be ACTIVE', async () => (await activeKeyHex()) === newKey);
  for (const port of nodePorts) {
    const renewed = sessionFile();
    await until(`node ${port} to renew under the new key`, async () => {
      const result = await runSClient({ port, tls: '1.3', sessIn: oldTicket, sessOut: renewed });
      return result.reused && sessionTicketKeyName(renewed) === newKey;
    });
  }
  await sleep(decryptWindowMs + 1000);
  for (const port of nodePorts) {
    const result = await runSClient({ port, tls: '1.3', sessIn: oldTicket });
    assert.ok(result.connected, result.output);
    assert.equal(result.reused, false, 'resumed past the decrypt window');
  }
});

test('RevokeKey: a ticket under the revoked key stops resuming on both nodes within a second', async () => {
  const ticket = sessionFile();
  assert.ok((await runSClient({ port: nodePorts[0]!, tls: '1.2', sessOut: ticket })).connected);
  const keyName = sessionTicketKeyName(ticket)!;
  assert.ok((await runSClient({ port: nodePorts[1]!, tls: '1.2', sessIn: ticket })).reused);
  await unary((done) =>
    keysClient.revokeKey(
      {
        ring: 'default',
        keyName: Buffer.from(keyName, 'hex'),
        reason: 'full-stack test',
      },
      done,
    ),
  );
  await sleep(1000);
  for (const port of nodePorts) {
    const result = await runSClient({ port, tls: '1.2', sessIn: ticket });
    assert.ok(result.connected, result.output);
    assert.equal(result.reused, false, `node ${port} still resumes a revoked key`);
  }
});

test('after the leaf is revoked at the CA and the staple refetched, both nodes staple the revoked response', async () => {
  pki.revoke(pki.leaf);
  responder.refreshIndex(pki.leaf);
  // A re-registration fetches at once (the scheduled refresh would come at half the validity).
  const listed = await unary<ListCertificatesResponse>((done) => staplesClient.listCertificates({}, done));
  for (const record of listed.certificates)
    await unary((done) => staplesClient.unregisterCertificate({ id: record.id }, done));
  await unary((done) => staplesClient.registerCertificate({ chainPem: pki.leaf.chainPem() }, done));
  for (const port of nodePorts) {
    await until(`node ${port} to staple the revoked response`, async () => {
      const result = await runSClient({ port, tls: '1.3', status: true });
      return result.stapleCertStatus === 'revoked';
    });
  }
});
