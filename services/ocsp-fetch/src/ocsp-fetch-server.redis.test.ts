// The service with a real redis-server and an in-process pkijs OCSP responder:
// mTLS roles on the admin methods, and what happens while Redis is down.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  StapleServiceClient,
  StapleStatus,
  type ListCertificatesResponse,
  type RegisterCertificateResponse,
} from '@keyfleet/proto';
import { createLogger, insecureDevSecurity, mtlsSecurity } from '@keyfleet/service-kit';
import { makeTempDir, randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
import {
  createTestCa,
  issueCertificate,
  toPem,
  type KeyedCertificate,
  type TestCa,
} from './testing/pkijs-test-ca.js';
import { startPkijsOcspResponder, type PkijsOcspResponder } from './testing/pkijs-ocsp-responder.js';
import { stapleClient, waitFor } from './testing/service-helpers.js';

let redis: TestRedis;
let ca: TestCa;
let responder: PkijsOcspResponder;
let leaf: KeyedCertificate;
const dir = makeTempDir('ocsp-redis-test');
const servers: OcspFetchServer[] = [];
const logger = createLogger('ocsp-redis-test', process.env.TEST_LOG_LEVEL ?? 'silent');

before(async () => {
  redis = await startRedis();
  ca = await createTestCa();
  responder = await startPkijsOcspResponder(ca.responder, 600_000);
  leaf = await issueCertificate({
    commonName: 'svc.test',
    issuer: ca.issuer,
    dnsNames: ['svc.test'],
    ocspUrl: responder.url,
  });
});

after(async () => {
  for (const server of servers) await server.stop();
  await responder?.stop();
  await redis?.stop();
  dir.remove();
});

async function keyPem(certificate: KeyedCertificate): Promise<string> {
  return toPem(
    new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', certificate.privateKey)),
    'PRIVATE KEY',
  );
}

function write(name: string, text: string): string {
  const file = path.join(dir.path, name);
  writeFileSync(file, text);
  return file;
}

test('mTLS: a reader may read and watch but not register; an admin may register; no certificate is refused', async () => {
  const serverCertificate = await issueCertificate({
    commonName: 'localhost',
    issuer: ca.issuer,
    dnsNames: ['localhost'],
  });
  const server = await createOcspFetchServer({
    // The test responders listen on loopback.
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    keyPrefix: randomPrefix('mtls'),
    grpcAddress: '127.0.0.1:0',
    logger,
    security: mtlsSecurity({
      certPath: write('server.pem', serverCertificate.pem() + ca.issuer.pem()),
      keyPath: write('server.key', await keyPem(serverCertificate)),
      clientCaPath: write('client-ca.pem', ca.issuer.pem() + ca.root.pem()),
      rolesPath: write(
        'roles.json',
        JSON.stringify({ admin: ['cn:ops-admin'], 'node:edge': ['cn:edge-node'] }),
      ),
    }),
  });
  servers.push(server);
  const clientFor = async (commonName: string | undefined) => {
    const roots = Buffer.from(ca.root.pem());
    if (!commonName)
      return new StapleServiceClient(`localhost:${server.grpcPort}`, grpc.credentials.createSsl(roots));
    const certificate = await issueCertificate({ commonName, issuer: ca.issuer });
    return new StapleServiceClient(
      `localhost:${server.grpcPort}`,
      grpc.credentials.createSsl(
        roots,
        Buffer.from(await keyPem(certificate)),
        Buffer.from(certificate.pem() + ca.issuer.pem()),
      ),
    );
  };
  const register = (client: StapleServiceClient) =>
    new Promise<RegisterCertificateResponse>((resolve, reject) =>
      client.registerCertificate({ chainPem: leaf.pem() + ca.issuer.pem() }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
  const list = (client: StapleServiceClient) =>
    new Promise<ListCertificatesResponse>((resolve, reject) =>
      client.listCertificates({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
  const code = (promise: Promise<unknown>) =>
    promise.then(
      () => grpc.status.OK,
      (error: grpc.ServiceError) => error.code,
    );

  const reader = await clientFor('edge-node');
  const admin = await clientFor('ops-admin');
  const stranger = await clientFor('someone-else');
  const anonymous = await clientFor(undefined);
  try {
    assert.equal(await code(register(reader)), grpc.status.PERMISSION_DENIED);
    assert.equal(await code(list(reader)), grpc.status.OK);
    assert.equal(await code(register(admin)), grpc.status.OK);
    assert.equal((await list(reader)).certificates.length, 1);
    assert.equal(await code(list(stranger)), grpc.status.PERMISSION_DENIED);
    assert.equal(await code(list(anonymous)), grpc.status.UNAUTHENTICATED);
  } finally {
    for (const client of [reader, admin, stranger, anonymous]) client.close();
  }
});

test('while Redis is down: reads and streams are served from the cache, writes are UNAVAILABLE; afterwards it recovers', async () => {
  const server = await createOcspFetchServer({
    // The test responders listen on loopback.
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    keyPrefix: randomPrefix('outage'),
    grpcAddress: '127.0.0.1:0',
    logger,
    security: insecureDevSecurity(),
    heartbeatIntervalMs: 200,
  });
  servers.push(server);
  const api = stapleClient(server.grpcPort);
  try {
    const { certificate } = await api.register({ chainPem: leaf.pem() + ca.issuer.pem() });
    const id = certificate!.id;
    await waitFor(
      'a good staple',
      async () => (await api.get({ id })).certificate?.status === StapleStatus.GOOD,
    );
    const watcher = api.watch([], 200);
    await waitFor('the snapshot', () => watcher.messages.some((m) => m.snapshot?.certificates.length === 1));

    await redis.kill();
    const cached = await waitFor(
      'a read served from the cache',
      async () => (await api.get({ id })).certificate,
    );
    assert.equal(cached.status, StapleStatus.GOOD);
    assert.ok(cached.staple && cached.staple.der.length > 0, 'the staple is still served');
    assert.equal((await api.list({})).certificates.length, 1);
    const other = await issueCertificate({
      commonName: 'other.test',
      issuer: ca.issuer,
      ocspUrl: responder.url,
    });
    await assert.rejects(
      api.register({ chainPem: other.pem() + ca.issuer.pem() }),
      (error: grpc.ServiceError) => {
        assert.equal(error.code, grpc.status.UNAVAILABLE);
        return true;
      },
    );
    const heartbeats = watcher.messages.filter((m) => m.heartbeat).length;
    await waitFor(
      'heartbeats while Redis is down',
      () => watcher.messages.filter((m) => m.heartbeat).length > heartbeats + 2,
    );

    // Redis comes back empty (no persistence in tests): the hub reloads and
    // tells the watcher the certificate is gone; registering works again.
    await redis.restart();
    await waitFor('removed after the reload', () => watcher.messages.some((m) => m.removedId === id), 30_000);
    const again = await waitFor('registering again', () =>
      api.register({ chainPem: leaf.pem() + ca.issuer.pem() }).catch(() => undefined),
    );
    assert.equal(again.created, true);
    await waitFor(
      'a good staple again',
      async () => (await api.get({ id })).certificate?.status === StapleStatus.GOOD,
    );
    watcher.stream.cancel();
  } finally {
    api.close();
  }
});
