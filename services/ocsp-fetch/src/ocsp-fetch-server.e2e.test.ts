// One replica against a real `openssl ocsp` responder (behind a switchable
// front that can also misbehave), a real redis-server and real gRPC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { OcspCertStatus, StapleStatus } from '@keyfleet/proto';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startOcspResponder,
  startRedis,
  type OcspResponder,
  type OcspResponderOptions,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
import { ocspRedisKeys } from './store/redis-keys.js';
import { fetchOcspOverHttp } from './fetch/http-fetch.js';
import { buildOcspRequest } from './ocsp/ocsp-request.js';
import { validateOcspResponse } from '@keyfleet/tls-engine';
import { parseCertificateDer } from './pki/certificate-chain.js';
import { parsePemBlocks } from './pki/pem.js';

const pemToDer = (pem: string) => parsePemBlocks(pem)[0]!.der;
import {
  startSwitchableResponder,
  type ResponderMode,
  type SwitchableResponder,
} from './testing/switchable-responder.js';
import { metricValue, opensslCheckStaple, stapleClient, waitFor } from './testing/service-helpers.js';

let redis: TestRedis;
let inspect: Redis;
let pki: TestPki;
let backendPki: TestPki;
let openssl: OcspResponder;
let front: SwitchableResponder;
let server: OcspFetchServer;
let api: ReturnType<typeof stapleClient>;
let clockOffsetMs = 0;
let leafId = '';
const prefix = randomPrefix('ocsp');
const keys = ocspRedisKeys(prefix);

const fetches = (result: string) => metricValue(server.registry, 'keyfleet_ocsp_fetches_total', { result });

async function restartOpenssl(options: OcspResponderOptions): Promise<void> {
  await openssl.stop();
  openssl = await startOcspResponder(backendPki, { nextUpdateMinutes: 1, ...options });
}

/** What Redis holds for the leaf's staple, straight from the hash. */
async function storedStaple(id: string) {
  const [der, thisUpdateMs] = await inspect.hmget(keys.certificate(id), 'stapleDer', 'thisUpdateMs');
  return { der, thisUpdateMs };
}

before(async () => {
  redis = await startRedis();
  inspect = new Redis(redis.url);
  const frontPort = await freePort();
  pki = createTestPki(frontPort);
  const backendPort = await freePort();
  // The certificates name the front; openssl listens behind it.
  backendPki = { ...pki, ocspPort: backendPort, ocspUrl: `http://127.0.0.1:${backendPort}` };
  openssl = await startOcspResponder(backendPki, { nextUpdateMinutes: 1 });
  front = await startSwitchableResponder(frontPort, backendPki.ocspUrl);
  server = await createOcspFetchServer({
    // The test responders listen on loopback.
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    security: insecureDevSecurity(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: prefix,
    logger: createLogger('ocsp-fetch-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    clock: () => Date.now() + clockOffsetMs,
    connectTimeoutMs: 1000,
    fetchTimeoutMs: 1500,
    // openssl answers with a 60 s window: refresh every ~1.2 s, retry fast.
    refresh: {
      refreshAtFraction: 0.02,
      jitterFraction: 0,
      minRefreshDelayMs: 300,
      safetyMarginMs: 10_000,
      retryInitialMs: 200,
      retryMaxMs: 800,
    },
    heartbeatIntervalMs: 300,
  });
  api = stapleClient(server.grpcPort);
});

after(async () => {
  api?.close();
  await server?.stop();
  await front?.stop();
  await openssl?.stop();
  inspect?.disconnect();
  await redis?.stop();
  pki?.remove();
});

test('registering fetches a good staple at once and pushes it to a watcher', async () => {
  const watcher = api.watch([], 200);
  await waitFor('the snapshot', () => watcher.messages.some((m) => m.snapshot));
  assert.deepEqual(watcher.messages[0]?.snapshot?.certificates, []);

  const registered = await api.register({ chainPem: pki.leaf.chainPem() });
  assert.equal(registered.created, true);
  const record = registered.certificate!;
  assert.equal(record.status, StapleStatus.PENDING, 'registered; the first fetch runs after');
  assert.equal(record.staple, undefined);
  leafId = record.id;
  assert.match(record.id, /^[0-9a-f]{64}$/);
  assert.deepEqual(record.dnsNames, ['localhost', 'keyfleet.test']);
  assert.equal(record.ocspUrl, front.url);
  assert.equal(record.subject, 'CN=localhost');

  const pushed = await waitFor('a pushed good staple', () =>
    watcher.messages.find((m) => m.updated?.id === leafId && m.updated.status === StapleStatus.GOOD),
  );
  const staple = pushed.updated!.staple!;
  assert.equal(staple.certStatus, OcspCertStatus.GOOD);
  assert.equal(staple.responderUrl, front.url);
  assert.ok(staple.der.length > 100);
  assert.ok(Math.abs(staple.nextUpdateMs - staple.thisUpdateMs - 60_000) <= 1000, 'openssl -nmin 1');
  await waitFor('heartbeats', () =>
    watcher.messages.some((m) => m.heartbeat && m.heartbeat.serverTimeMs > 0),
  );
  // The staple is what openssl signed: openssl itself accepts it.
  const text = opensslCheckStaple(pki, staple.der);
  assert.match(text, /: good/);
  assert.equal(front.requests[0]?.method, 'GET', 'a short request goes by GET (RFC 5019)');

  const again = await api.register({ chainPem: pki.leaf.chainPem() });
  assert.equal(again.created, false);
  assert.equal(again.certificate?.id, leafId);

  const byFingerprint = await api.get({ fingerprintSha256: Buffer.from(leafId, 'hex') });
  assert.equal(byFingerprint.certificate?.status, StapleStatus.GOOD);
  assert.ok((await fetches('ok')) >= 1);
  // Gauges are this replica's view: it follows the store through pub/sub, a moment later.
  const gauge = (name: string, labels: Record<string, string>) => metricValue(server.registry, name, labels);
  await waitFor(
    'the good gauge',
    async () => (await gauge('keyfleet_ocsp_certificates', { status: 'good' })) === 1,
  );
  assert.equal(
    await metricValue(server.registry, 'keyfleet_ocsp_staple_revoked', { certificate: leafId.slice(0, 16) }),
    0,
  );
  const untilNext = await metricValue(server.registry, 'keyfleet_ocsp_staple_seconds_until_next_update', {
    certificate: leafId.slice(0, 16),
  });
  assert.ok(untilNext > 0 && untilNext <= 61, `seconds until nextUpdate ${untilNext}`);
  watcher.stream.cancel();
});

test('a good refresh replaces the staple with a newer thisUpdate', async () => {
  const first = await storedStaple(leafId);
  await waitFor(
    'a newer staple',
    async () => Number((await storedStaple(leafId)).thisUpdateMs) > Number(first.thisUpdateMs),
  );
});

/** Waits for two failures of one kind and checks the staple did not move in between or after. */
async function expectFailureKeepsStaple(result: string, lastErrorPattern: RegExp): Promise<void> {
  const before = await fetches(result);
  await waitFor(`a first ${result}`, async () => (await fetches(result)) > before);
  const held = await storedStaple(leafId);
  assert.ok(held.der, 'a good staple is held');
  await waitFor(`a second ${result}`, async () => (await fetches(result)) > before + 1);
  assert.deepEqual(await storedStaple(leafId), held, `${result}: the stored staple did not change`);
  const record = (await api.get({ id: leafId })).certificate!;
  if (clockOffsetMs <= 0) {
    assert.equal(record.status, StapleStatus.GOOD, 'the last good staple is still served');
    assert.equal(record.staple?.der.toString('base64'), held.der);
  }
  assert.ok(record.fetch!.consecutiveFailures >= 2);
  assert.match(record.fetch!.lastError, lastErrorPattern);
}

async function backToGood(): Promise<void> {
  front.mode = 'proxy';
  await waitFor(
    'a good fetch again',
    async () => (await api.get({ id: leafId })).certificate?.fetch?.consecutiveFailures === 0,
  );
}

const frontFailures: Array<[ResponderMode, string, RegExp]> = [
  ['http500', 'http_error', /http 500/],
  ['garbage', 'malformed', /malformed/],
  ['oversize', 'too_large', /content-length 70000 is over 65536/],
  ['oversizeChunked', 'too_large', /over 65536 bytes/],
  ['tryLater', 'try_later', /tryLater/],
  ['hang', 'timeout', /timeout/],
];
for (const [mode, result, lastError] of frontFailures) {
  test(`responder ${mode}: no staple stored, the last good one stays, result=${result}`, async () => {
    front.mode = mode;
    try {
      await expectFailureKeepsStaple(result, lastError);
    } finally {
      await backToGood();
    }
  });
}

test('openssl signing with an unrelated key: rejected as unauthorized_signer', async () => {
  await restartOpenssl({ signer: 'unrelated' });
  await expectFailureKeepsStaple('unauthorized_signer', /not issued by the issuer/);
  await restartOpenssl({});
  await backToGood();
});

test('a delegated responder without id-kp-OCSPSigning: rejected', async () => {
  await restartOpenssl({ signer: 'delegated-without-ocsp-signing' });
  await expectFailureKeepsStaple('unauthorized_signer', /lacks id-kp-OCSPSigning/);
  await restartOpenssl({});
  await backToGood();
});

test('a response without nextUpdate: rejected', async () => {
  await restartOpenssl({ omitNextUpdate: true });
  await expectFailureKeepsStaple('no_next_update', /no nextUpdate/);
  await restartOpenssl({});
  await backToGood();
});

test('signed by the issuer itself: accepted', async () => {
  await restartOpenssl({ signer: 'issuer' });
  const before = Number((await storedStaple(leafId)).thisUpdateMs);
  await waitFor(
    'an issuer-signed staple',
    async () => Number((await storedStaple(leafId)).thisUpdateMs) > before,
  );
  await restartOpenssl({});
});

test('an expired response (the service clock is 2 h ahead): rejected, nothing served expired', async () => {
  const watcher = api.watch([leafId], 200);
  await waitFor('the snapshot', () => watcher.messages.some((m) => m.snapshot));
  clockOffsetMs = 2 * 3_600_000;
  try {
    await expectFailureKeepsStaple('expired', /has passed/);
    const record = (await api.get({ id: leafId })).certificate!;
    assert.equal(record.status, StapleStatus.EXPIRED);
    assert.equal(record.staple, undefined, 'an expired staple is never served');
    const pushed = await waitFor('EXPIRED pushed to the watcher', () =>
      watcher.messages.find((m) => m.updated?.status === StapleStatus.EXPIRED),
    );
    assert.equal(pushed.updated?.staple, undefined);
  } finally {
    watcher.stream.cancel();
    clockOffsetMs = 0;
  }
  await backToGood();
});

test('thisUpdate in the future (the service clock is 1 h behind): rejected', async () => {
  clockOffsetMs = -3_600_000;
  try {
    await expectFailureKeepsStaple('not_yet_valid', /in the future/);
  } finally {
    clockOffsetMs = 0;
  }
  await backToGood();
});

test('a new certificate whose first fetches fail is FETCH_FAILING, then GOOD once the responder answers', async () => {
  front.mode = 'http500';
  const fresh = pki.issueLeaf('fresh', { dnsNames: ['fresh.test'] });
  let id = '';
  try {
    id = (await api.register({ chainPem: fresh.chainPem() })).certificate!.id;
    const failing = await waitFor('FETCH_FAILING', async () => {
      const current = (await api.get({ id })).certificate;
      return current?.status === StapleStatus.FETCH_FAILING ? current : undefined;
    });
    assert.equal(failing.staple, undefined);
    assert.match(failing.fetch!.lastError, /http 500/);
    await waitFor(
      'the fetch_failing gauge',
      async () =>
        (await metricValue(server.registry, 'keyfleet_ocsp_certificates', { status: 'fetch_failing' })) === 1,
    );
  } finally {
    front.mode = 'proxy';
  }
  await waitFor(
    'GOOD after recovery',
    async () => (await api.get({ id })).certificate?.status === StapleStatus.GOOD,
  );
  await api.unregister({ id });
});

test('POST (a request too long for GET) and a SHA-256 CertID both work against openssl', async () => {
  const leaf = parseCertificateDer(pemToDer(pki.leaf.certPem()));
  const issuer = parseCertificateDer(pemToDer(pki.intermediate.certPem()));
  for (const hash of ['sha1', 'sha256'] as const) {
    const request = await buildOcspRequest(leaf, issuer, hash);
    const before = front.requests.length;
    const answer = await fetchOcspOverHttp(front.url, request.der, {
      connectTimeoutMs: 2000,
      totalTimeoutMs: 5000,
      maxResponseBytes: 65_536,
      getMaxEncodedBytes: 0, // always POST
    });
    assert.ok(answer.ok, answer.ok ? '' : answer.detail);
    assert.equal(answer.method, 'POST');
    assert.equal(front.requests[before]?.method, 'POST');
    const verdict = await validateOcspResponse({
      der: answer.body,
      certId: request.certId,
      issuer,
      nowMs: Date.now(),
      skewMs: 300_000,
      maxResponseBytes: 65_536,
    });
    assert.ok(verdict.ok, verdict.ok ? '' : `${hash}: ${verdict.reason} ${verdict.detail}`);
  }
});

test('"unknown" after a good staple is a counted failure: the last good staple stays and is served', async () => {
  const flip = pki.issueLeaf('flip', { dnsNames: ['flip.test'] });
  const { certificate } = await api.register({ chainPem: flip.chainPem() });
  const id = certificate!.id;
  await waitFor(
    'a GOOD staple',
    async () => (await api.get({ id })).certificate?.status === StapleStatus.GOOD,
  );
  const unknownBefore = await fetches('cert_status_unknown');
  // The responder forgets the certificate: it now answers "unknown" for it.
  const index = readFileSync(pki.indexPath, 'utf8');
  writeFileSync(
    pki.indexPath,
    index
      .split('\n')
      .filter((line) => !line.endsWith('/CN=flip.test'))
      .join('\n'),
  );
  try {
    await restartOpenssl({});
    await waitFor('an unknown answer', async () => (await fetches('cert_status_unknown')) > unknownBefore);
    const kept = await storedStaple(id);
    await waitFor(
      'two more unknown answers',
      async () => (await fetches('cert_status_unknown')) > unknownBefore + 2,
    );
    assert.deepEqual(await storedStaple(id), kept, 'the stored staple is not replaced');
    const record = (await api.get({ id })).certificate!;
    assert.equal(record.status, StapleStatus.GOOD);
    assert.equal(record.staple?.certStatus, OcspCertStatus.GOOD);
    assert.match(record.fetch?.lastError ?? '', /cert_status_unknown/);
    assert.ok((record.fetch?.consecutiveFailures ?? 0) > 0);
  } finally {
    writeFileSync(pki.indexPath, index);
    await restartOpenssl({});
    await api.unregister({ id });
  }
});

test('a certificate unknown to the responder never gets a staple: FETCH_FAILING, counted', async () => {
  // Signed by the intermediate's key but never entered in the CA database.
  const dir = pki.dir;
  const ext = path.join(dir, 'outside.ext');
  writeFileSync(
    ext,
    `subjectAltName = DNS:outside.test\nauthorityInfoAccess = OCSP;URI:${front.url}\nbasicConstraints = critical, CA:false\n`,
  );
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'outside.key',
    '-subj',
    '/CN=outside.test',
    '-out',
    'outside.csr',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'outside.csr',
    '-CA',
    'intermediate.pem',
    '-CAkey',
    'intermediate.key',
    '-set_serial',
    '0x7777',
    '-days',
    '5',
    '-extfile',
    ext,
    '-out',
    'outside.pem',
  ]);
  const chainPem = execFileSync('cat', ['outside.pem', 'intermediate.pem'], { cwd: dir, encoding: 'utf8' });
  const unknownBefore = await fetches('cert_status_unknown');
  const { certificate } = await api.register({ chainPem });
  const record = await waitFor('a failing fetch', async () => {
    const current = (await api.get({ id: certificate!.id })).certificate;
    return current?.status === StapleStatus.FETCH_FAILING ? current : undefined;
  });
  assert.equal(record.staple, undefined);
  assert.match(record.fetch?.lastError ?? '', /cert_status_unknown/);
  assert.ok((await fetches('cert_status_unknown')) > unknownBefore);
  assert.equal((await inspect.hget(keys.certificate(certificate!.id), 'stapleDer')) ?? '', '');
  assert.equal(record.serialHex, '7777');
  await api.unregister({ id: certificate!.id });
});

test('a certificate without an OCSP URL is NO_OCSP_URL: reported, never fetched', async () => {
  const noOcsp = pki.issueLeaf('no-ocsp', { dnsNames: ['no-ocsp.test'], ocspUrl: false });
  const { certificate } = await api.register({ chainPem: noOcsp.chainPem() });
  assert.equal(certificate?.status, StapleStatus.NO_OCSP_URL);
  assert.equal(certificate?.ocspUrl, '');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const later = (await api.get({ id: certificate.id })).certificate!;
  assert.equal(later.status, StapleStatus.NO_OCSP_URL);
  assert.equal(later.fetch?.lastAttemptAtMs, 0, 'no fetch was attempted');
  await waitFor(
    'the no_ocsp_url gauge',
    async () =>
      (await metricValue(server.registry, 'keyfleet_ocsp_certificates', { status: 'no_ocsp_url' })) === 1,
  );
  await api.unregister({ id: certificate.id });
});

test('hostile RegisterCertificate input is INVALID_ARGUMENT and stores nothing', async () => {
  const before = (await api.list({})).certificates.length;
  const registryKeys = async () =>
    (await inspect.keys(`${keys.certificateIndex.replace(/certs$/, '')}*`)).sort();
  const keysBefore = await registryKeys();
  const hostile = [
    '',
    'not pem',
    '-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n',
    pki.leaf.certPem(),
    pki.leaf.certPem() + pki.unrelated.certPem(),
    pki.leaf.keyPem() + pki.intermediate.certPem(),
    pki.leaf.certPem().slice(0, 300) + '\n-----END CERTIFICATE-----\n' + pki.intermediate.certPem(),
    `-----BEGIN CERTIFICATE-----\n${'QUFB'.repeat(30_000)}\n-----END CERTIFICATE-----\n`,
  ];
  for (const chainPem of hostile) {
    await assert.rejects(api.register({ chainPem }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT, `${chainPem.slice(0, 40)}: ${error.details}`);
      assert.match(error.details, /^chain_pem: /);
      return true;
    });
  }
  assert.equal((await api.list({})).certificates.length, before);
  assert.deepEqual(await registryKeys(), keysBefore);
});

test('bad ids and selectors are INVALID_ARGUMENT; unknown ids NOT_FOUND', async () => {
  const code = async (promise: Promise<unknown>) => {
    try {
      await promise;
      return grpc.status.OK;
    } catch (error) {
      return (error as grpc.ServiceError).code;
    }
  };
  assert.equal(await code(api.get({ id: 'xyz' })), grpc.status.INVALID_ARGUMENT);
  assert.equal(await code(api.get({})), grpc.status.INVALID_ARGUMENT);
  assert.equal(await code(api.get({ fingerprintSha256: Buffer.alloc(5) })), grpc.status.INVALID_ARGUMENT);
  assert.equal(await code(api.get({ id: '0'.repeat(64) })), grpc.status.NOT_FOUND);
  assert.equal(await code(api.unregister({ id: '0'.repeat(64) })), grpc.status.NOT_FOUND);
  const watchError = (request: { ids: string[]; nodeId: string; heartbeatIntervalMs: number }) =>
    new Promise<number>((resolve) => {
      const stream = api.client.watchStaples(request);
      stream.on('data', () => {});
      stream.on('error', (error: grpc.ServiceError) => resolve(error.code));
    });
  assert.equal(
    await watchError({ ids: [], nodeId: '', heartbeatIntervalMs: 0 }),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await watchError({ ids: [], nodeId: 'n', heartbeatIntervalMs: 50 }),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await watchError({ ids: ['nothex'], nodeId: 'n', heartbeatIntervalMs: 0 }),
    grpc.status.INVALID_ARGUMENT,
  );
});

test('a revoked certificate: the revoked staple is served, with the revoked metric at 1', async () => {
  pki.revoke(pki.leaf);
  openssl.refreshIndex(pki.leaf);
  const record = await waitFor('a REVOKED staple', async () => {
    const current = (await api.get({ id: leafId })).certificate;
    return current?.status === StapleStatus.REVOKED ? current : undefined;
  });
  assert.equal(record.staple?.certStatus, OcspCertStatus.REVOKED);
  assert.ok(record.staple.revokedAtMs > 0 && record.staple.revokedAtMs <= Date.now());
  await waitFor(
    'the revoked gauges',
    async () =>
      (await metricValue(server.registry, 'keyfleet_ocsp_staple_revoked', {
        certificate: leafId.slice(0, 16),
      })) === 1 &&
      (await metricValue(server.registry, 'keyfleet_ocsp_certificates', { status: 'revoked' })) === 1,
  );
});

test('unregistering removes the record, tells watchers, and stops fetching', async () => {
  const watcher = api.watch([leafId], 200);
  await waitFor('the snapshot', () => watcher.messages.some((m) => m.snapshot));
  assert.equal(watcher.messages[0]?.snapshot?.certificates.length, 1);
  await api.unregister({ id: leafId });
  await waitFor('removed_id', () => watcher.messages.some((m) => m.removedId === leafId));
  assert.equal(await inspect.exists(keys.certificate(leafId)), 0);
  // A fetch already under way when the record went may still arrive; none may start after.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const requests = front.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(front.requests.length, requests, 'no fetch after unregistering');
  watcher.stream.cancel();
});
