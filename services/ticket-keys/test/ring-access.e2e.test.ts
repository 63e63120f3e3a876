// Per-ring grants over real mTLS with a real Redis: a node of ring A is refused
// every RPC on ring B (PERMISSION_DENIED, and not one byte of ring B reaches it),
// a reader gets names and times but never secrets, identities match on
// subjectAltName URI / DNS as well as CN, and a certificate from another CA
// naming itself keyfleet-admin gets nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import {
  TicketServiceClient,
  type OpenTicketRequest,
  type OpenTicketResponse,
  type SealTicketRequest,
  type SealTicketResponse,
} from '@keyfleet/proto';
import { mtlsSecurity } from '@keyfleet/service-kit';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startRedis,
  type IssuedCertificate,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import { createTicketServiceBinding } from '../src/keyless/ticket-service-binding.js';
import {
  connect,
  eventually,
  lastEpoch,
  startReplica,
  statusOf,
  watch,
  type TestClient,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let probe: Redis;
let pki: TestPki;
let foreign: TestPki;
let prefix: string;
let replica: RunningTicketKeysServer;
const opened: { close(): void }[] = [];

const params = (ring: string) => ({
  ring,
  rotationIntervalMs: 3_600_000,
  propagationMs: 0,
  decryptWindowMs: 0,
  ticketLifetimeMs: 0,
  maxSessionAgeMs: 0,
  bindServerName: false,
  promoteOnFullAck: false,
});

function credentialsOf(cert: IssuedCertificate, ca: TestPki = pki) {
  return grpc.credentials.createSsl(
    Buffer.from(pki.root.certPem() + (ca === pki ? pki.intermediate.certPem() : '')),
    Buffer.from(cert.keyPem()),
    Buffer.from(cert.chainPem()),
  );
}

function keyClient(cert: IssuedCertificate, ca: TestPki = pki): TestClient {
  const client = connect(replica.port, credentialsOf(cert, ca));
  opened.push(client);
  return client;
}

function ticketClient(cert: IssuedCertificate) {
  const client = new TicketServiceClient(`localhost:${replica.port}`, credentialsOf(cert));
  opened.push(client);
  const seal = (request: Partial<SealTicketRequest>) =>
    new Promise<SealTicketResponse>((resolve, reject) =>
      client.sealTicket(
        {
          ring: '',
          session: Buffer.from('session'),
          appdata: Buffer.alloc(0),
          context: undefined,
          ...request,
        },
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
  const open = (request: Partial<OpenTicketRequest>) =>
    new Promise<OpenTicketResponse>((resolve, reject) =>
      client.openTicket(
        { ring: '', ticket: Buffer.alloc(0), context: undefined, ...request },
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
  return { seal, open };
}

let admin: TestClient;
let nodeA: TestClient;
let nodeACn: TestClient;
let readerA: TestClient;
let nodeB: TestClient;
let foreignAdmin: TestClient;
let certs: Record<'admin' | 'nodeA' | 'nodeACn' | 'readerA' | 'nodeB', IssuedCertificate>;

before(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url);
  pki = createTestPki(await freePort());
  foreign = createTestPki(await freePort());
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(
    rolesPath,
    JSON.stringify({
      admin: ['cn:keyfleet-admin'],
      'node:ring-a': ['uri:spiffe://keyfleet.test/ns/edge/sa/node-a', 'cn:node-a-by-cn'],
      'reader:ring-a': ['cn:dashboard-a'],
      'node:ring-b': ['dns:node-b.keyfleet.test'],
    }),
  );
  const clientCa = path.join(pki.dir, 'client-ca.pem');
  writeFileSync(clientCa, pki.intermediate.certPem() + pki.root.certPem());
  prefix = randomPrefix('access');
  replica = await startReplica(redis.url, prefix, {
    security: mtlsSecurity({
      certPath: pki.leaf.chainPath,
      keyPath: pki.leaf.keyPath,
      clientCaPath: clientCa,
      rolesPath,
    }),
    extraServices: ({ keySetSource }) => [createTicketServiceBinding(keySetSource)],
  });
  certs = {
    admin: pki.issueClient('keyfleet-admin'),
    // The CN is deliberately one that has no grant: the SAN URI is what matches.
    nodeA: pki.issueClient('some-workload', { uris: ['spiffe://keyfleet.test/ns/edge/sa/node-a'] }),
    nodeACn: pki.issueClient('node-a-by-cn'),
    readerA: pki.issueClient('dashboard-a'),
    nodeB: pki.issueClient('other-workload', { dnsNames: ['node-b.keyfleet.test'] }),
  };
  admin = keyClient(certs.admin);
  nodeA = keyClient(certs.nodeA);
  nodeACn = keyClient(certs.nodeACn);
  readerA = keyClient(certs.readerA);
  nodeB = keyClient(certs.nodeB);
  foreignAdmin = keyClient(foreign.issueClient('keyfleet-admin'), foreign);
  await admin.putRing({ params: params('ring-a') });
  await admin.putRing({ params: params('ring-b') });
});

after(async () => {
  for (const client of opened) client.close();
  await replica?.stop(500);
  probe?.disconnect();
  pki?.remove();
  foreign?.remove();
  await redis?.stop();
});

/** Every Redis key under the test's prefix with its value: nothing a refused call does may change it. */
async function dump(): Promise<string> {
  const keys = (await probe.keys(`*${prefix}*`)).filter((key) => !key.includes('bull')).sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const type = await probe.type(key);
    if (type === 'hash') out[key] = await probe.hgetall(key);
    else if (type === 'set') out[key] = (await probe.smembers(key)).sort();
    else if (type === 'zset') out[key] = await probe.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'string') out[key] = await probe.get(key);
  }
  return JSON.stringify(out);
}

/** Opens a WatchKeySet stream and reports how it ended and whether any message arrived. */
function watchOutcome(client: TestClient, ring: string) {
  return new Promise<{ code: grpc.status; messages: number }>((resolve) => {
    let messages = 0;
    const call = client.raw.watchKeySet({ ring, nodeId: 'probe', heartbeatIntervalMs: 0 });
    call.on('data', () => (messages += 1));
    call.on('error', (error: grpc.ServiceError) => resolve({ code: error.code, messages }));
    call.on('end', () => resolve({ code: grpc.status.OK, messages }));
  });
}

test('a certificate from a foreign CA with CN=keyfleet-admin is refused and changes nothing', async () => {
  const before = await dump();
  for (const call of [
    () => foreignAdmin.rotate({ ring: 'ring-a', reason: 'foreign' }),
    () => foreignAdmin.getKeySet({ ring: 'ring-a', omitSecrets: false }),
    () => foreignAdmin.listRings({}),
    () => foreignAdmin.putRing({ params: params('ring-c') }),
  ]) {
    const { code } = await statusOf(call());
    assert.equal(grpc.status[code], grpc.status[grpc.status.UNAUTHENTICATED]);
  }
  assert.equal(await dump(), before);
});

test('a node of ring A gets PERMISSION_DENIED on ring B for every RPC, and no byte of ring B', async () => {
  // Material of ring B that must not come back: its key names and secrets, and a ticket sealed under it.
  const ringB = (await admin.getKeySet({ ring: 'ring-b', omitSecrets: false })).keySet!;
  const sealedB = await ticketClient(certs.admin).seal({
    ring: 'ring-b',
    session: Buffer.from('ring-b-session'),
  });
  const activeB = ringB.keys.find((key) => key.state === 2)!;
  const before = await dump();
  const tickets = ticketClient(certs.nodeA);
  for (const client of [nodeA, nodeACn]) {
    const refused: [string, () => Promise<unknown>][] = [
      ['GetKeySet with secrets', () => client.getKeySet({ ring: 'ring-b', omitSecrets: false })],
      ['GetKeySet without secrets', () => client.getKeySet({ ring: 'ring-b', omitSecrets: true })],
      ['AckKeySet', () => client.ackKeySet({ ring: 'ring-b', nodeId: 'n', epoch: ringB.epoch })],
      ['Rotate', () => client.rotate({ ring: 'ring-b', reason: '' })],
      ['RevokeKey', () => client.revokeKey({ ring: 'ring-b', keyName: activeB.name, reason: '' })],
      ['PutRing', () => client.putRing({ params: params('ring-b') })],
      [
        'GetKeySet of a ring that does not exist',
        () => client.getKeySet({ ring: 'ring-z', omitSecrets: true }),
      ],
    ];
    for (const [name, call] of refused) {
      const { code, details } = await statusOf(call());
      assert.equal(grpc.status[code], grpc.status[grpc.status.PERMISSION_DENIED], `${name}: ${details}`);
    }
    const watched = await watchOutcome(client, 'ring-b');
    assert.equal(grpc.status[watched.code], grpc.status[grpc.status.PERMISSION_DENIED]);
    assert.equal(watched.messages, 0);
    const rings = (await client.listRings({})).rings.map((ring) => ring.params?.ring);
    assert.deepEqual(rings, ['ring-a']);
  }
  for (const call of [
    () => tickets.seal({ ring: 'ring-b' }),
    () => tickets.open({ ring: 'ring-b', ticket: sealedB.ticket }),
  ]) {
    const { code } = await statusOf(call());
    assert.equal(grpc.status[code], grpc.status[grpc.status.PERMISSION_DENIED]);
  }
  assert.equal(await dump(), before);
});

test('a node of ring A gets ring A with secrets, watches, acks, seals and opens there', async () => {
  for (const client of [nodeA, nodeACn]) {
    const keySet = (await client.getKeySet({ ring: 'ring-a', omitSecrets: false })).keySet!;
    assert.ok(keySet.keys.length > 0 && keySet.keys.every((key) => key.secret.length === 32));
  }
  const watcher = watch(nodeA, 'ring-a', 'node-a-1');
  await eventually(() => lastEpoch(watcher) > 0, 15_000, 'ring-a key set');
  const ack = await nodeA.ackKeySet({ ring: 'ring-a', nodeId: 'node-a-1', epoch: lastEpoch(watcher) });
  assert.equal(ack.epoch, lastEpoch(watcher));
  watcher.cancel();
  const tickets = ticketClient(certs.nodeA);
  const sealed = await tickets.seal({ ring: 'ring-a', session: Buffer.from('mine') });
  assert.equal(
    Buffer.from((await tickets.open({ ring: 'ring-a', ticket: sealed.ticket })).session).toString(),
    'mine',
  );
  // A DNS subjectAltName identity works the same way for ring B.
  assert.ok((await nodeB.getKeySet({ ring: 'ring-b', omitSecrets: false })).keySet!.keys.length > 0);
  assert.equal(
    grpc.status[(await statusOf(nodeB.getKeySet({ ring: 'ring-a', omitSecrets: true }))).code],
    'PERMISSION_DENIED',
  );
});

test('a reader of ring A gets names and times but never a secret', async () => {
  const keySet = (await readerA.getKeySet({ ring: 'ring-a', omitSecrets: true })).keySet!;
  assert.ok(keySet.keys.length > 0 && keySet.keys.every((key) => key.secret.length === 0));
  const before = await dump();
  const { code } = await statusOf(readerA.getKeySet({ ring: 'ring-a', omitSecrets: false }));
  assert.equal(grpc.status[code], 'PERMISSION_DENIED');
  const watched = await watchOutcome(readerA, 'ring-a');
  assert.equal(grpc.status[watched.code], 'PERMISSION_DENIED');
  assert.equal(watched.messages, 0);
  assert.equal(
    grpc.status[(await statusOf(readerA.ackKeySet({ ring: 'ring-a', nodeId: 'n', epoch: 1 }))).code],
    'PERMISSION_DENIED',
  );
  assert.equal(
    grpc.status[(await statusOf(readerA.rotate({ ring: 'ring-a', reason: '' }))).code],
    'PERMISSION_DENIED',
  );
  assert.deepEqual(
    (await readerA.listRings({})).rings.map((ring) => ring.params?.ring),
    ['ring-a'],
  );
  assert.equal(await dump(), before);
});
