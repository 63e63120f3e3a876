// The runnable engine node (src/node/main.ts) as real processes: two nodes on
// one ring fed by a WatchKeySet / WatchStaples peer over real gRPC; openssl
// s_client resumes across them, sees the staple, follows rotation and
// revocation; /metrics, SIGTERM, a bad variable and the TCP proxy mode.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { randomBytes, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import {
  KeyState,
  OcspCertStatus,
  StapleServiceService,
  StapleStatus,
  TicketKeyServiceService,
  type KeySet,
  type TicketKey,
  type WatchKeySetRequest,
  type WatchKeySetResponse,
  type WatchStaplesRequest,
  type WatchStaplesResponse,
} from '@keyfleet/proto';
import {
  createTestPki,
  freePort,
  makeTempDir,
  runSClient,
  sessionTicketKeyName,
  startGrpcServer,
  fetchOcspResponse,
  startOcspResponder,
  startProcess,
  type RunningProcess,
  type TestGrpcServer,
  type TestPki,
} from '@keyfleet/test-support';
import { certificateId } from '@keyfleet/tls-engine';

const mainPath = fileURLToPath(new URL('../src/node/main.ts', import.meta.url));
let pki: TestPki;
let dir: { path: string; remove(): void };
let grpcServer: TestGrpcServer;
const keyStreams = new Set<grpc.ServerWritableStream<WatchKeySetRequest, WatchKeySetResponse>>();
let keySet: KeySet;
let stapleDer: Buffer;
interface Node {
  process: RunningProcess;
  port: number;
  metricsPort: number;
}
const nodes: Node[] = [];
let a: Node;
let b: Node;
let fileCounter = 0;
const sessionFile = () => path.join(dir.path, `s-${++fileCounter}.pem`);

function key(activatesAtMs: number): TicketKey {
  return {
    name: randomBytes(16),
    secret: randomBytes(32),
    publishedAtMs: activatesAtMs - 1000,
    activatesAtMs,
    retiresAtMs: 0,
    expiresAtMs: 0,
    state: KeyState.ACTIVE,
  };
}

function publishKeySet(keys: TicketKey[], revoked: Buffer[] = []): void {
  keySet = {
    ring: 'default',
    epoch: (keySet?.epoch ?? 0) + 1,
    params: undefined,
    keys,
    revokedKeyNames: revoked,
    serverTimeMs: Date.now(),
  };
  for (const stream of keyStreams) stream.write({ keySet });
}

async function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: response.status, body: await response.text() };
}

async function startNode(name: string, extraEnv: Record<string, string> = {}): Promise<Node> {
  const port = await freePort();
  const metricsPort = await freePort();
  const running = startProcess(process.execPath, ['--import', 'tsx', mainPath], {
    env: {
      ...process.env,
      KEYFLEET_LISTEN: `127.0.0.1:${port}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      KEYFLEET_CERT_CHAIN: pki.leaf.chainPath,
      KEYFLEET_KEY: pki.leaf.keyPath,
      KEYFLEET_TICKET_KEYS_ADDRESS: grpcServer.address,
      KEYFLEET_OCSP_FETCH_ADDRESS: grpcServer.address,
      KEYFLEET_NODE_ID: name,
      KEYFLEET_INSECURE_DEV: 'true',
      ...extraEnv,
    },
  });
  const node = { process: running, port, metricsPort };
  nodes.push(node);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const health = await get(metricsPort, '/healthz').catch(() => undefined);
    if (health?.status === 200) return node;
    if (Date.now() > deadline || running.child.exitCode !== null) {
      throw new Error(`node ${name} did not become healthy:\n${running.output()}`);
    }
    await sleep(100);
  }
}

before(async () => {
  pki = createTestPki(await freePort());
  dir = makeTempDir('engine-node');
  const responder = await startOcspResponder(pki);
  try {
    stapleDer = fetchOcspResponse(pki, pki.leaf);
  } finally {
    await responder.stop();
  }
  const leafId = certificateId(new X509Certificate(readFileSync(pki.leaf.certPath)).raw);
  publishKeySet([key(Date.now() - 5000)]);
  grpcServer = await startGrpcServer((server) => {
    server.addService(TicketKeyServiceService, {
      watchKeySet: (call: grpc.ServerWritableStream<WatchKeySetRequest, WatchKeySetResponse>) => {
        keyStreams.add(call);
        call.write({ keySet });
        call.on('cancelled', () => keyStreams.delete(call));
      },
      ackKeySet: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, { epoch: keySet.epoch, ackCoverage: 1 }),
    });
    server.addService(StapleServiceService, {
      watchStaples: (call: grpc.ServerWritableStream<WatchStaplesRequest, WatchStaplesResponse>) => {
        call.write({
          snapshot: {
            certificates: [
              {
                id: leafId,
                subject: 'CN=localhost',
                issuer: 'CN=keyfleet test intermediate',
                serialHex: '',
                notAfterMs: 0,
                dnsNames: ['localhost'],
                ocspUrl: pki.ocspUrl,
                status: StapleStatus.GOOD,
                staple: {
                  der: stapleDer,
                  certStatus: OcspCertStatus.GOOD,
                  thisUpdateMs: Date.now() - 1000,
                  nextUpdateMs: Date.now() + 600_000,
                  producedAtMs: Date.now() - 1000,
                  revokedAtMs: 0,
                  fetchedAtMs: Date.now(),
                  responderUrl: pki.ocspUrl,
                },
                fetch: undefined,
                registeredAtMs: Date.now(),
              },
            ],
          },
        });
      },
    });
  });
  [a, b] = await Promise.all([startNode('node-a'), startNode('node-b')]);
});

after(async () => {
  await Promise.all(nodes.map((node) => node.process.stop()));
  await grpcServer?.stop(500);
  pki?.remove();
  dir?.remove();
});

test('both nodes staple a good response from the first handshake', async () => {
  for (const [node, name] of [
    [a, 'node-a'],
    [b, 'node-b'],
  ] as const) {
    const result = await runSClient({ port: node.port, tls: '1.3', status: true });
    assert.ok(result.connected, result.output);
    assert.equal(result.stapleCertStatus, 'good', result.output);
    assert.match(result.output, new RegExp(`keyfleet engine node ${name}`));
  }
});

test('a session from node A resumes on node B, TLS 1.3 and 1.2', async () => {
  for (const tls of ['1.3', '1.2'] as const) {
    const file = sessionFile();
    const first = await runSClient({ port: a.port, tls, sessOut: file });
    assert.ok(first.connected, first.output);
    assert.match(first.output, /resumed: false/);
    const second = await runSClient({ port: b.port, tls, sessIn: file });
    assert.ok(second.reused, second.output);
    // The node itself saw a resumed session (not just s_client's claim).
    assert.match(second.output, /keyfleet engine node node-b[\s\S]*resumed: true/);
  }
});

test('a rotation reaches both nodes: the old ticket resumes and is replaced; a revoked key stops resuming within a second', async () => {
  const oldTicket = sessionFile();
  assert.ok((await runSClient({ port: a.port, tls: '1.3', sessOut: oldTicket })).connected);
  const k1 = keySet.keys[0]!;
  const k2 = key(Date.now() - 10);
  publishKeySet([k1, k2]);
  const renewed = sessionFile();
  const deadline = Date.now() + 10_000;
  let resumed;
  do {
    resumed = await runSClient({ port: b.port, tls: '1.3', sessIn: oldTicket, sessOut: renewed });
  } while (sessionTicketKeyName(renewed) !== Buffer.from(k2.name).toString('hex') && Date.now() < deadline);
  assert.ok(resumed.reused, resumed.output);
  assert.equal(sessionTicketKeyName(renewed), Buffer.from(k2.name).toString('hex'));

  const k3 = key(Date.now() - 10);
  publishKeySet([k1, k3], [Buffer.from(k2.name)]);
  await sleep(1000);
  for (const node of [a, b]) {
    const result = await runSClient({ port: node.port, tls: '1.3', sessIn: renewed });
    assert.ok(result.connected, result.output);
    assert.equal(result.reused, false, 'a ticket under the revoked key resumed');
  }
  const metrics = (await get(a.metricsPort, '/metrics')).body;
  assert.match(metrics, new RegExp(`keyfleet_engine_key_set_epoch\\{ring="default"\\} ${keySet.epoch}`));
  assert.match(metrics, /keyfleet_engine_ticket_decisions_total\{[^}]*reason="KEY_REVOKED"\} [1-9]/);
  assert.match(metrics, /keyfleet_engine_staples_served_total\{result="stapled"\} [1-9]/);
  assert.match(metrics, /^keyfleet_engine_ticket_hook_fallback 0$/m);
});

test('proxy mode: decrypted bytes go to KEYFLEET_UPSTREAM and back', async () => {
  const upstream = net.createServer((socket) =>
    socket.once('data', (data) => socket.end(`upstream got: ${data.toString()}`)),
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  try {
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    const proxy = await startNode('node-proxy', { KEYFLEET_UPSTREAM: `127.0.0.1:${upstreamPort}` });
    const result = await runSClient({ port: proxy.port, tls: '1.3', request: 'hello\n' });
    assert.ok(result.connected, result.output);
    assert.match(result.output, /upstream got: hello/);
  } finally {
    upstream.close();
  }
});

test('SIGTERM stops a node cleanly (exit 0)', async () => {
  const node = await startNode('node-term');
  const exited = new Promise<number | null>((resolve) =>
    node.process.child.once('exit', (code) => resolve(code)),
  );
  node.process.child.kill('SIGTERM');
  assert.equal(await exited, 0, node.process.output());
});

test('a bad variable exits 2 with a message naming it', () => {
  for (const [variable, value] of [
    ['KEYFLEET_LISTEN', 'not-an-address'],
    ['KEYFLEET_RING', 'Bad Ring!'],
    ['KEYFLEET_CERT_CHAIN', ''],
    ['KEYFLEET_STRICT_MUST_STAPLE', 'maybe'],
  ] as const) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', mainPath], {
      env: {
        ...process.env,
        KEYFLEET_CERT_CHAIN: pki.leaf.chainPath,
        KEYFLEET_KEY: pki.leaf.keyPath,
        KEYFLEET_INSECURE_DEV: 'true',
        [variable]: value,
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 2, `${variable}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(variable));
  }
});
