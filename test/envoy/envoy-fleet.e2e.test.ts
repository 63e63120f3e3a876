// Two real Envoys (the pinned 1.40.0) on the example bootstrap of
// deploy/k8s/examples/envoy, each taking its session-ticket keys from a
// different ticket-keys replica and its certificate with the OCSP staple from
// ocsp-fetch, over SDS and mTLS as cn:keyfleet-node, with a real Redis and a
// real `openssl ocsp` responder; `openssl s_client` is the TLS client. A
// ticket from Envoy A resumes on Envoy B over TLS 1.2 and 1.3; after a Rotate
// the old ticket still resumes and new tickets use the new key once it
// activates; after RevokeKey the old ticket resumes nowhere within a second;
// both Envoys staple the current OCSP response and the next one after a
// refresh; Envoy's own /stats count the SDS updates and no handshake refused
// for want of secrets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  StapleServiceClient,
  TicketKeyServiceClient,
  type GetKeySetResponse,
  type RegisterCertificateResponse,
  type RevokeKeyResponse,
  type RotateResponse,
} from '@keyfleet/proto';
import {
  createLogger,
  fetchSecrets,
  mtlsSecurity,
  secretDiscoveryClient,
  type ServerSecurity,
} from '@keyfleet/service-kit';
import { createOcspFetchServer, type OcspFetchServer } from '@keyfleet/ocsp-fetch';
import {
  createTicketKeysServer,
  newKekLine,
  parseKekFile,
  type RunningTicketKeysServer,
} from '@keyfleet/ticket-keys';
import {
  createTestPki,
  freePort,
  makeTempDir,
  randomPrefix,
  runSClient,
  sessionTicketKeyName,
  startEnvoy,
  startOcspResponder,
  startRedis,
  type OcspResponder,
  type TestEnvoy,
  type TestPki,
  type TestRedis,
  type TlsVersion,
} from '@keyfleet/test-support';
import { exampleBootstrap } from './example-bootstrap.js';

const ring = 'edge';
// Long enough to look at the fleet while the new key is PENDING.
const propagationMs = 4000;
const logger = createLogger('envoy-fleet-test', process.env.TEST_LOG_LEVEL ?? 'silent');

let redis: TestRedis;
let pki: TestPki;
let responder: OcspResponder;
let work: ReturnType<typeof makeTempDir>;
let ticketKeysA: RunningTicketKeysServer;
let ticketKeysB: RunningTicketKeysServer;
let ocspFetch: OcspFetchServer;
let keys: TicketKeyServiceClient;
let staples: StapleServiceClient;
let envoyA: TestEnvoy;
let envoyB: TestEnvoy;
const httpsPort = new Map<TestEnvoy, number>();
let certificateId = '';
/** Credentials as Envoy's SDS clusters present them, for a client of our own. */
let credentialsAs: (name: string) => grpc.ChannelCredentials;

function unary<Res>(invoke: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown) {
  return new Promise<Res>((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response)));
  });
}

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki, { nextUpdateMinutes: 1 });
  work = makeTempDir('envoy-fleet');

  // keyfleet's server certificate carries both Services' names, which the example's clusters check.
  const server = pki.issueLeaf('keyfleet-server', {
    dnsNames: ['ticket-keys.keyfleet.svc', 'ocsp-fetch.keyfleet.svc'],
    ocspUrl: false,
  });
  const envoyClient = pki.issueClient('keyfleet-node');
  const admin = pki.issueClient('keyfleet-admin');
  // The roles of deploy/k8s/base/roles.json.
  const rolesPath = path.join(work.path, 'roles.json');
  writeFileSync(
    rolesPath,
    JSON.stringify({ admin: ['cn:keyfleet-admin'], [`node:${ring}`]: ['cn:keyfleet-node'] }),
  );
  const security = (): ServerSecurity =>
    mtlsSecurity({
      certPath: server.chainPath,
      keyPath: server.keyPath,
      clientCaPath: pki.root.certPath,
      rolesPath,
    });

  const keyPrefix = randomPrefix('envoy-fleet');
  const keks = parseKekFile(newKekLine('envoy-fleet-kek'));
  const ticketKeysReplica = () =>
    createTicketKeysServer({
      redisUrl: redis.url,
      keyPrefix,
      keks,
      security: security(),
      registry: new Registry(),
      logger,
      runScheduler: false,
      watcherRefreshMs: 200,
    });
  ticketKeysA = await ticketKeysReplica();
  ticketKeysB = await ticketKeysReplica();

  // Envoy reads the served certificate's key from a path keyfleet only names.
  const privateKeyDir = path.join(work.path, 'private');
  ocspFetch = await createOcspFetchServer({
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    security: security(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: randomPrefix('envoy-fleet-ocsp'),
    logger,
    sdsPrivateKeyPath: path.join(privateKeyDir, '{certificate}.key'),
    // openssl answers with a 60 s window: refresh about every 3 s.
    refresh: { refreshAtFraction: 0.05, jitterFraction: 0, minRefreshDelayMs: 300, safetyMarginMs: 10_000 },
  });
  await ocspFetch.whenReady();

  credentialsAs = (name: string) => {
    const client =
      name === 'keyfleet-node' ? envoyClient : name === 'keyfleet-admin' ? admin : pki.issueClient(name);
    return grpc.credentials.createSsl(
      Buffer.from(pki.root.certPem()),
      Buffer.from(client.keyPem()),
      Buffer.from(client.chainPem()),
    );
  };
  const adminCredentials = credentialsAs('keyfleet-admin');
  const channelOptions = { 'grpc.ssl_target_name_override': 'ticket-keys.keyfleet.svc' };
  keys = new TicketKeyServiceClient(`127.0.0.1:${ticketKeysA.port}`, adminCredentials, channelOptions);
  staples = new StapleServiceClient(`127.0.0.1:${ocspFetch.grpcPort}`, adminCredentials, {
    'grpc.ssl_target_name_override': 'ocsp-fetch.keyfleet.svc',
  });
  await unary((cb) =>
    keys.putRing(
      {
        params: {
          ring,
          rotationIntervalMs: 3_600_000,
          propagationMs,
          decryptWindowMs: 0,
          ticketLifetimeMs: 0,
          maxSessionAgeMs: 0,
          bindServerName: false,
          promoteOnFullAck: false,
        },
      },
      cb,
    ),
  );
  const registered = await unary<RegisterCertificateResponse>((cb) =>
    staples.registerCertificate({ chainPem: pki.leaf.chainPem() }, cb),
  );
  certificateId = registered.certificate!.id;
  mkdirSync(privateKeyDir);
  copyFileSync(pki.leaf.keyPath, path.join(privateKeyDir, `${certificateId}.key`));

  const startOne = async (nodeId: string, ticketKeysPort: number) => {
    const port = await freePort();
    const dir = path.join(work.path, nodeId);
    mkdirSync(dir);
    const envoy = await startEnvoy({
      name: nodeId,
      config: exampleBootstrap({
        nodeId,
        httpsPort: port,
        healthPort: await freePort(),
        ticketKeysPort,
        ocspFetchPort: ocspFetch.grpcPort,
        ring,
        certificateId,
        clientChainPath: envoyClient.chainPath,
        clientKeyPath: envoyClient.keyPath,
        caPath: pki.root.certPath,
        dir,
      }),
    });
    httpsPort.set(envoy, port);
    return envoy;
  };
  envoyA = await startOne('envoy-a', ticketKeysA.port);
  envoyB = await startOne('envoy-b', ticketKeysB.port);
  // initial_fetch_timeout 0s: LIVE means both secrets arrived.
  await Promise.all([envoyA.waitUntilLive(30_000), envoyB.waitUntilLive(30_000)]);
});

after(async () => {
  await envoyA?.stop();
  await envoyB?.stop();
  keys?.close();
  staples?.close();
  await ticketKeysA?.stop();
  await ticketKeysB?.stop();
  await ocspFetch?.stop();
  await responder?.stop();
  await redis?.stop();
  pki?.remove();
  work?.remove();
});

const keySet = async () =>
  (await unary<GetKeySetResponse>((cb) => keys.getKeySet({ ring, omitSecrets: true }, cb))).keySet!;

// The example's listener speaks HTTP/1.1 (Envoy refuses 1.0 unless told); the
// server closes after the answer, so s_client returns at once.
const request = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

/** A full handshake on `envoy` that saves its session (with the ticket) in a new file. */
async function newSession(envoy: TestEnvoy, tls: TlsVersion, label: string) {
  const sessOut = path.join(work.path, `${label}.sess`);
  const result = await runSClient({ port: httpsPort.get(envoy)!, tls, sessOut, request });
  assert.ok(
    result.connected && !result.reused,
    `${label}: a full handshake on ${envoy.name}:\n${result.output}`,
  );
  return { file: sessOut, keyName: sessionTicketKeyName(sessOut) };
}

/** Whether `envoy` resumes the saved session. */
async function resumes(envoy: TestEnvoy, sessionFile: string, tls: TlsVersion) {
  const result = await runSClient({ port: httpsPort.get(envoy)!, tls, sessIn: sessionFile, request });
  return result.reused;
}

/** Envoy's counter or gauge, 0 when it has none of that name. */
async function stat(envoy: TestEnvoy, name: string): Promise<number> {
  return (await envoy.stats()).get(name) ?? 0;
}

/** Polls `check` every 50 ms until it holds; throws with `what` after `timeoutMs`. */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

test('both Envoys are LIVE on keyfleet secrets, and a ticket from one resumes on the other over TLS 1.2 and 1.3', async () => {
  for (const tls of ['1.2', '1.3'] as const) {
    const fromA = await newSession(envoyA, tls, `a-${tls}`);
    assert.ok(await resumes(envoyB, fromA.file, tls), `TLS ${tls}: A's ticket resumes on B`);
    const fromB = await newSession(envoyB, tls, `b-${tls}`);
    assert.ok(await resumes(envoyA, fromB.file, tls), `TLS ${tls}: B's ticket resumes on A`);
    const [only] = (await keySet()).keys;
    assert.equal(fromA.keyName, hex(only!.name), `TLS ${tls}: sealed under the ring's one key`);
  }

  for (const envoy of [envoyA, envoyB]) {
    const stats = await envoy.stats();
    const listener = `listener.127.0.0.1_${httpsPort.get(envoy)}`;
    for (const secret of [`ticket-keys/${ring}`, `staple/${certificateId}`]) {
      assert.ok(
        (stats.get(`sds.${secret}.update_success`) ?? 0) >= 1,
        `${envoy.name}: ${secret} arrived over SDS`,
      );
      assert.equal(stats.get(`sds.${secret}.update_rejected`), 0, `${envoy.name}: ${secret} never rejected`);
      assert.equal(
        stats.get(`sds.${secret}.init_fetch_timeout`),
        0,
        `${envoy.name}: ${secret} before any timeout`,
      );
    }
    assert.equal(
      stats.get(`${listener}.server_ssl_socket_factory.downstream_context_secrets_not_ready`),
      0,
      `${envoy.name}: no handshake refused for want of secrets`,
    );
    assert.ok(
      (stats.get(`${listener}.ssl.session_reused`) ?? 0) >= 2,
      `${envoy.name}: Envoy counted the resumptions`,
    );
  }
});

// Saved by the rotation test, revoked by the next one.
const oldTickets = new Map<TlsVersion, string>();
let oldKeyName: Buffer = Buffer.alloc(0);

test('after a Rotate the old tickets still resume on both, and new ones are sealed under the new key once it activates', async () => {
  for (const tls of ['1.2', '1.3'] as const)
    oldTickets.set(tls, (await newSession(envoyA, tls, `old-${tls}`)).file);
  const updatesBefore = await Promise.all(
    [envoyA, envoyB].map((envoy) => stat(envoy, `sds.ticket-keys/${ring}.update_success`)),
  );
  oldKeyName = (await keySet()).keys[0]!.name;

  const rotated = await unary<RotateResponse>((cb) => keys.rotate({ ring, reason: 'envoy-fleet test' }, cb));
  const newKey = rotated.keySet!.keys.find((key) => hex(key.name) === hex(rotated.publishedKeyName))!;
  assert.ok(newKey.activatesAtMs > Date.now(), 'the new key is PENDING for the propagation window');

  // Pushed while PENDING (second: every Envoy decrypts before any encrypts).
  await until('both Envoys took the PENDING key', 3000, async () => {
    const now = await Promise.all(
      [envoyA, envoyB].map((envoy) => stat(envoy, `sds.ticket-keys/${ring}.update_success`)),
    );
    return now.every((count, index) => count > updatesBefore[index]!);
  });
  assert.ok(Date.now() < newKey.activatesAtMs, 'the push came well inside the propagation window');
  const whilePending = await newSession(envoyB, '1.2', 'pending');
  assert.equal(whilePending.keyName, hex(oldKeyName), 'while the new key is PENDING the old one still seals');

  // Pushed again at activation: the new key moves first.
  await until(
    'Envoy A seals under the new key',
    Math.max(0, newKey.activatesAtMs - Date.now()) + 3000,
    async () => {
      return (await newSession(envoyA, '1.3', 'probe-a')).keyName === hex(newKey.name);
    },
  );
  await until('Envoy B seals under the new key', 1000, async () => {
    return (await newSession(envoyB, '1.2', 'probe-b')).keyName === hex(newKey.name);
  });
  for (const [tls, file] of oldTickets) {
    for (const envoy of [envoyA, envoyB]) {
      assert.ok(
        await resumes(envoy, file, tls),
        `TLS ${tls}: a ticket under the old key still resumes on ${envoy.name}`,
      );
    }
  }
});

test('after RevokeKey the old tickets resume on neither Envoy, within a second', async (t) => {
  assert.ok(
    oldTickets.size === 2 && oldKeyName.length === 16,
    'the rotation test saved tickets under the old key',
  );
  const revoked = await unary<RevokeKeyResponse>((cb) =>
    keys.revokeKey({ ring, keyName: oldKeyName, reason: 'envoy-fleet test' }, cb),
  );
  assert.ok(!revoked.keySet!.keys.some((key) => hex(key.name) === hex(oldKeyName)));
  const elapsed = await until('no Envoy resumes a ticket under the revoked key', 1000, async () => {
    for (const [tls, file] of oldTickets) {
      for (const envoy of [envoyA, envoyB]) if (await resumes(envoy, file, tls)) return false;
    }
    return true;
  });
  t.diagnostic(`RevokeKey returned → no Envoy resumes: ${elapsed} ms`);
  // The fleet still works: full handshakes, and their tickets resume across.
  const fresh = await newSession(envoyB, '1.3', 'after-revoke');
  assert.ok(await resumes(envoyA, fresh.file, '1.3'));
});

test('both Envoys staple the current OCSP response from ocsp-fetch, and the next one after a refresh', async () => {
  const servedThisUpdate = async (envoy: TestEnvoy) => {
    const result = await runSClient({ port: httpsPort.get(envoy)!, status: true, request });
    assert.ok(result.stapled, `${envoy.name} staples:\n${result.output}`);
    assert.equal(result.stapleCertStatus, 'good');
    const line = /This Update: (.+)/.exec(result.output);
    assert.ok(line, `${envoy.name}: a This Update line`);
    return Date.parse(line[1]!.trim());
  };
  const current = async () => {
    const record = await unary<{ certificate?: { staple?: { thisUpdateMs: number } } }>((cb) =>
      staples.getStaple({ id: certificateId }, cb),
    );
    return Math.floor(record.certificate!.staple!.thisUpdateMs / 1000) * 1000;
  };

  // ocsp-fetch refreshes every few seconds: a served staple equals the current one once both are read in between.
  let first = 0;
  await until('both Envoys staple the staple ocsp-fetch holds', 10_000, async () => {
    const held = await current();
    const served = await Promise.all([envoyA, envoyB].map(servedThisUpdate));
    first = held;
    return served.every((thisUpdate) => thisUpdate === held);
  });
  await until('both Envoys staple a newer response after a refresh', 20_000, async () => {
    const served = await Promise.all([envoyA, envoyB].map(servedThisUpdate));
    return served.every((thisUpdate) => thisUpdate > first);
  });
  for (const envoy of [envoyA, envoyB]) {
    assert.ok(
      (await stat(envoy, `sds.staple/${certificateId}.update_success`)) >= 2,
      `${envoy.name}: staples pushed`,
    );
  }
});

test('over mTLS, SDS serves a ring only to the identities its node grant names', async () => {
  const fetchAs = async (identity: string, name: string) => {
    const sds = secretDiscoveryClient(`127.0.0.1:${ticketKeysA.port}`, credentialsAs(identity), {
      'grpc.ssl_target_name_override': 'ticket-keys.keyfleet.svc',
    });
    try {
      return await fetchSecrets(sds, {
        node: { id: `probe-${identity}`, cluster: 'test' },
        resource_names: [name],
      });
    } finally {
      sds.close();
    }
  };
  const granted = await fetchAs('keyfleet-node', `ticket-keys/${ring}`);
  assert.equal(granted.resources.length, 1);
  await assert.rejects(fetchAs('keyfleet-node', 'ticket-keys/another-ring'), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.PERMISSION_DENIED);
    assert.match(error.details, /no node grant for ring "another-ring"/);
    return true;
  });
  await assert.rejects(fetchAs('stranger', `ticket-keys/${ring}`), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.PERMISSION_DENIED, error.details);
    return true;
  });
});
