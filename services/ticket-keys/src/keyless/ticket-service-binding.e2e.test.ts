// Keyless mode over real gRPC on loopback (service-kit's server, plain text and
// mTLS with roles), with key sets fed by hand: no Redis is needed to prove that
// a keyless caller gets the answers a node holding the keys would give.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  KeySet,
  TicketDecision as D,
  TicketReason as R,
  TicketServiceClient,
  TicketStatus as S,
  type OpenTicketRequest,
  type OpenTicketResponse,
  type SealTicketRequest,
  type SealTicketResponse,
} from '@keyfleet/proto';
import {
  createLogger,
  insecureDevSecurity,
  mtlsSecurity,
  startServiceServer,
  type RunningServiceServer,
} from '@keyfleet/service-kit';
import { createTicketEngine, KeySetProvider } from '@keyfleet/tls-engine';
import { createTestPki, freePort, type TestPki } from '@keyfleet/test-support';
import { createTicketServiceBinding } from './ticket-service-binding.js';

const minute = 60_000;
const hour = 60 * minute;

function keySet(ring: string, epoch: number, params: Partial<KeySet['params']> = {}): KeySet {
  return KeySet.fromPartial({
    ring,
    epoch,
    params: { ring, decryptWindowMs: 12 * hour, rotationIntervalMs: hour, propagationMs: minute, ...params },
    keys: [1, 2].map((id) => ({
      name: Buffer.alloc(16, id),
      secret: Buffer.alloc(32, id + 40),
      publishedAtMs: (id - 1) * hour,
      activatesAtMs: (id - 1) * hour + (id - 1) * minute,
    })),
  });
}

let nowMs = 10 * minute;
const sets = new Map<string, KeySet>([
  ['edge', keySet('edge', 7)],
  ['bound', keySet('bound', 1, { bindServerName: true })],
]);
const source = { current: (ring: string) => sets.get(ring) };
const logger = createLogger('keyless-test', 'silent');
let server: RunningServiceServer;
let client: TicketServiceClient;

before(async () => {
  server = await startServiceServer({
    address: '127.0.0.1:0',
    security: insecureDevSecurity(),
    services: [createTicketServiceBinding(source, { clock: () => nowMs, metrics: new Registry() })],
    registry: new Registry(),
    logger,
  });
  client = new TicketServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});
after(async () => {
  client.close();
  await server.stop(500);
});

const seal = (c: TicketServiceClient, request: Partial<SealTicketRequest>) =>
  new Promise<SealTicketResponse>((resolve, reject) =>
    c.sealTicket(
      { ring: 'edge', session: Buffer.alloc(0), appdata: Buffer.alloc(0), context: undefined, ...request },
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
const open = (c: TicketServiceClient, request: Partial<OpenTicketRequest>) =>
  new Promise<OpenTicketResponse>((resolve, reject) =>
    c.openTicket(
      { ring: 'edge', ticket: Buffer.alloc(0), context: undefined, ...request },
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );
const rejectsWith = async (promise: Promise<unknown>, code: grpc.status, message: RegExp) => {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(grpc.status[error.code], grpc.status[code]);
    assert.match(error.details, message);
    return true;
  });
};

test('SealTicket then OpenTicket: USE with session, appdata, issue time, key name and epoch', async () => {
  nowMs = 10 * minute;
  const session = Buffer.from('a TLS session'.repeat(20));
  const appdata = Buffer.from('tenant=42');
  const sealed = await seal(client, { session, appdata });
  assert.deepEqual(sealed.keyName, Buffer.alloc(16, 1));
  assert.equal(sealed.epoch, 7);
  assert.equal(sealed.lifetimeHintMs, 12 * hour);
  nowMs += minute;
  const opened = await open(client, { ticket: sealed.ticket });
  assert.deepEqual([S[opened.status], D[opened.decision], R[opened.reason]], ['SUCCESS', 'USE', 'OK']);
  assert.deepEqual(opened.session, session);
  assert.deepEqual(opened.appdata, appdata);
  assert.equal(opened.issuedAtMs, 10 * minute);
  assert.deepEqual(opened.keyName, Buffer.alloc(16, 1));
  assert.equal(opened.renewedTicket.length, 0);
  assert.equal(opened.epoch, 7);
});

test('keyless and a node holding the same key set give the same answers, both ways, across a rotation', async () => {
  const provider = new KeySetProvider({ ring: 'edge', nodeId: 'node-1', clock: () => nowMs });
  provider.applyKeySet(sets.get('edge')!);
  const node = createTicketEngine({ ring: 'edge', keys: provider, clock: () => nowMs });
  nowMs = 20 * minute;
  const fromKeyless = (await seal(client, { session: Buffer.from('k') })).ticket;
  const fromNode = Buffer.from(node.generate(Buffer.from('n'), Buffer.alloc(0)).ticket);
  for (const at of [20 * minute, 50 * minute, hour + minute, 5 * hour, hour + minute + 12 * hour]) {
    nowMs = at;
    for (const ticket of [fromKeyless, fromNode]) {
      const remote = await open(client, { ticket });
      const local = node.decrypt(ticket);
      assert.deepEqual(
        [S[remote.status], D[remote.decision], R[remote.reason]],
        [S[local.status], D[local.decision], R[local.reason]],
        `at ${at}`,
      );
      if (remote.decision === D.USE_RENEW) {
        // The replacement is under the ACTIVE key and opens on the node with the original issue time.
        assert.ok(remote.renewedTicket.length > 0);
        assert.deepEqual(remote.renewedTicket.subarray(1, 17), Buffer.alloc(16, 2));
        const renewed = node.decrypt(remote.renewedTicket);
        assert.equal(renewed.decision, D.USE);
        assert.equal(renewed.issuedAtMs, 20 * minute);
      }
    }
  }
  assert.equal((await open(client, { ticket: fromNode })).reason, R.KEY_EXPIRED);
  node.close();
});

test('SNI binding travels through the context', async () => {
  nowMs = 10 * minute;
  const { ticket } = await seal(client, {
    ring: 'bound',
    context: { serverName: 'a.example', clientIdentity: '', alpnProtocol: '' },
  });
  const same = await open(client, {
    ring: 'bound',
    ticket,
    context: { serverName: 'a.example', clientIdentity: '', alpnProtocol: '' },
  });
  assert.equal(same.decision, D.USE);
  const other = await open(client, {
    ring: 'bound',
    ticket,
    context: { serverName: 'b.example', clientIdentity: '', alpnProtocol: '' },
  });
  assert.deepEqual([D[other.decision], R[other.reason]], ['IGNORE_RENEW', 'SNI_MISMATCH']);
});

test('bad requests: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION; bad tickets are NO_DECRYPT, not errors', async () => {
  await rejectsWith(seal(client, { ring: 'Not A Ring' }), grpc.status.INVALID_ARGUMENT, /^ring: /);
  await rejectsWith(seal(client, { ring: 'nope' }), grpc.status.NOT_FOUND, /ring "nope" does not exist/);
  await rejectsWith(open(client, { ring: 'nope', ticket: Buffer.alloc(60) }), grpc.status.NOT_FOUND, /nope/);
  await rejectsWith(
    seal(client, { session: Buffer.alloc(8193) }),
    grpc.status.INVALID_ARGUMENT,
    /^session: is 8193 bytes/,
  );
  await rejectsWith(
    seal(client, { appdata: Buffer.alloc(4097) }),
    grpc.status.INVALID_ARGUMENT,
    /^appdata: /,
  );
  await rejectsWith(
    seal(client, { context: { serverName: 'x'.repeat(256), clientIdentity: '', alpnProtocol: '' } }),
    grpc.status.INVALID_ARGUMENT,
    /context.server_name/,
  );
  const largest = await seal(client, { session: Buffer.alloc(8192), appdata: Buffer.alloc(4096) });
  assert.equal((await open(client, { ticket: largest.ticket })).decision, D.USE);

  const tooLarge = await open(client, { ticket: Buffer.alloc(16385, 1) });
  assert.deepEqual(
    [S[tooLarge.status], D[tooLarge.decision], R[tooLarge.reason]],
    ['NO_DECRYPT', 'IGNORE_RENEW', 'TOO_LARGE'],
  );
  for (const [ticket, reason] of [
    [Buffer.alloc(0), R.EMPTY],
    [Buffer.from('garbage'), R.MALFORMED],
    [Buffer.concat([Buffer.of(1), Buffer.alloc(16, 9), Buffer.alloc(60)]), R.UNKNOWN_KEY],
    [Buffer.concat([largest.ticket.subarray(0, 100), Buffer.alloc(10)]), R.AUTH_FAILED],
  ] as const) {
    const answer = await open(client, { ticket });
    assert.equal(R[answer.reason], R[reason]);
    assert.equal(answer.session.length, 0);
  }

  sets.set('secretless', {
    ...keySet('secretless', 1),
    keys: keySet('secretless', 1).keys.map((k) => ({ ...k, secret: Buffer.alloc(0) })),
  });
  await rejectsWith(
    seal(client, { ring: 'secretless' }),
    grpc.status.FAILED_PRECONDITION,
    /no usable key set/,
  );
});

test("over mTLS the ring's node grant suffices; a certificate without a grant is refused", async () => {
  const pki: TestPki = createTestPki(await freePort());
  const caPath = path.join(pki.dir, 'client-ca.pem');
  writeFileSync(caPath, pki.intermediate.certPem() + pki.root.certPem());
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(rolesPath, JSON.stringify({ 'node:edge': ['cn:keyless-reader'] }));
  const secure = await startServiceServer({
    address: '127.0.0.1:0',
    security: mtlsSecurity({
      certPath: pki.leaf.chainPath,
      keyPath: pki.leaf.keyPath,
      clientCaPath: caPath,
      rolesPath,
    }),
    services: [createTicketServiceBinding(source, { clock: () => nowMs })],
    registry: new Registry(),
    logger,
  });
  const connect = (name: string) => {
    const cert = pki.issueClient(name);
    return new TicketServiceClient(
      `localhost:${secure.port}`,
      grpc.credentials.createSsl(
        Buffer.from(pki.root.certPem()),
        Buffer.from(cert.keyPem()),
        Buffer.from(cert.chainPem()),
      ),
    );
  };
  const reader = connect('keyless-reader');
  const stranger = connect('stranger');
  try {
    nowMs = 10 * minute;
    const sealed = await seal(reader, { session: Buffer.from('s') });
    assert.equal((await open(reader, { ticket: sealed.ticket })).decision, D.USE);
    await rejectsWith(open(stranger, { ticket: sealed.ticket }), grpc.status.PERMISSION_DENIED, /no grant/);
  } finally {
    reader.close();
    stranger.close();
    await secure.stop(500);
    pki.remove();
  }
});
