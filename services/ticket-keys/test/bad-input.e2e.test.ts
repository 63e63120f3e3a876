// Over mTLS with roles: every kind of bad input gets the right status and a message
// naming the field, and nothing stored changes (the ring's Redis keys are dumped
// before and after). Also: two replicas racing Rotate with the same expected epoch,
// and the service-wide dump check (every Redis key, BullMQ's too, holds no secret).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import type { RingParams } from '@keyfleet/proto';
import { mtlsSecurity } from '@keyfleet/service-kit';
import { engineAeadKey } from '@keyfleet/tls-engine';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startRedis,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import { redisKeys } from '../src/store/redis-keys.js';
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
let prefix: string;
let replicas: RunningTicketKeysServer[] = [];
let admin: TestClient;
let admin2: TestClient;
let reader: TestClient;
let stranger: TestClient;
let anonymous: TestClient;

const ring = 'guarded';
const params = (overrides: Partial<RingParams> = {}): RingParams => ({
  ring,
  rotationIntervalMs: 0,
  propagationMs: 0,
  decryptWindowMs: 0,
  ticketLifetimeMs: 0,
  maxSessionAgeMs: 0,
  bindServerName: false,
  promoteOnFullAck: false,
  ...overrides,
});

before(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url);
  pki = createTestPki(await freePort());
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(
    rolesPath,
    JSON.stringify({
      admin: ['cn:kf-admin'],
      'node:guarded': ['cn:kf-reader'],
      'node:nope': ['cn:kf-reader'],
    }),
  );
  const security = () =>
    mtlsSecurity({
      certPath: pki.leaf.certPath,
      keyPath: pki.leaf.keyPath,
      clientCaPath: pki.root.certPath,
      rolesPath,
    });
  prefix = randomPrefix('bad');
  replicas = [
    await startReplica(redis.url, prefix, { security: security(), runScheduler: true }),
    await startReplica(redis.url, prefix, { security: security() }),
  ];
  const ca = pki.root.certPem();
  const chainCa = Buffer.from(ca + pki.intermediate.certPem());
  const as = (name: string | undefined, port: number) => {
    if (!name) return connect(port, grpc.credentials.createSsl(chainCa));
    const cert = pki.issueClient(name);
    return connect(
      port,
      grpc.credentials.createSsl(chainCa, Buffer.from(cert.keyPem()), Buffer.from(cert.chainPem())),
    );
  };
  admin = as('kf-admin', replicas[0]!.port);
  admin2 = as('kf-admin', replicas[1]!.port);
  reader = as('kf-reader', replicas[0]!.port);
  stranger = as('kf-stranger', replicas[0]!.port);
  anonymous = as(undefined, replicas[0]!.port);
  await admin.putRing({ params: params({ rotationIntervalMs: 3_600_000 }) });
});

after(async () => {
  for (const client of [admin, admin2, reader, stranger, anonymous]) client?.close();
  await Promise.all(replicas.map((replica) => replica.stop(500)));
  probe?.disconnect();
  pki?.remove();
  await redis.stop();
});

/** Every key of the ring with its value, as one comparable string. */
async function dumpRing(): Promise<string> {
  const keys = redisKeys(prefix).ring(ring);
  return JSON.stringify({
    params: await probe.hgetall(keys.params),
    state: await probe.hgetall(keys.state),
    keys: await probe.hgetall(keys.keys),
    revoked: await probe.zrange(keys.revoked, 0, -1, 'WITHSCORES'),
    rings: (await probe.smembers(redisKeys(prefix).ringsIndex)).sort(),
  });
}

const activeName = async () =>
  (await admin.getKeySet({ ring, omitSecrets: true })).keySet!.keys.find((k) => k.state === 2)!.name;

const cases: { name: string; call: () => Promise<unknown>; code: grpc.status; message?: RegExp }[] = [
  {
    name: 'unknown ring (Get)',
    call: () => reader.getKeySet({ ring: 'nope', omitSecrets: false }),
    code: grpc.status.NOT_FOUND,
    message: /nope/,
  },
  {
    name: 'unknown ring (Rotate)',
    call: () => admin.rotate({ ring: 'nope', reason: '' }),
    code: grpc.status.NOT_FOUND,
  },
  {
    name: 'unknown ring (Revoke)',
    call: () => admin.revokeKey({ ring: 'nope', keyName: Buffer.alloc(16), reason: '' }),
    code: grpc.status.NOT_FOUND,
  },
  {
    name: 'unknown ring (Ack)',
    call: () => reader.ackKeySet({ ring: 'nope', nodeId: 'n', epoch: 1 }),
    code: grpc.status.NOT_FOUND,
  },
  {
    name: 'unknown key name',
    call: () => admin.revokeKey({ ring, keyName: Buffer.alloc(16, 7), reason: '' }),
    code: grpc.status.NOT_FOUND,
  },
  {
    name: 'key name of 15 bytes',
    call: () => admin.revokeKey({ ring, keyName: Buffer.alloc(15), reason: '' }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /key_name/,
  },
  {
    name: 'key name of 4 KiB',
    call: () => admin.revokeKey({ ring, keyName: Buffer.alloc(4096), reason: '' }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /key_name/,
  },
  {
    name: 'bad ring name',
    call: () => admin.rotate({ ring: '../Etc', reason: '' }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /^ring/,
  },
  {
    name: 'oversized ring name',
    call: () => reader.getKeySet({ ring: 'r'.repeat(100_000), omitSecrets: true }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /^ring/,
  },
  {
    name: 'reason over 256 characters',
    call: () => admin.rotate({ ring, reason: 'x'.repeat(257) }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /reason/,
  },
  {
    name: 'node_id over 128 characters',
    call: () => reader.ackKeySet({ ring, nodeId: 'n'.repeat(129), epoch: 1 }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /node_id/,
  },
  {
    name: 'node_id with a control character',
    call: () => reader.ackKeySet({ ring, nodeId: 'a\u0000b', epoch: 1 }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /node_id/,
  },
  {
    name: 'interval out of range',
    call: () => admin.putRing({ params: params({ rotationIntervalMs: 10 }) }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /rotation_interval_ms/,
  },
  {
    name: 'propagation not below the interval',
    call: () => admin.putRing({ params: params({ rotationIntervalMs: 5000, propagationMs: 5000 }) }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /propagation_ms/,
  },
  {
    name: 'lifetime beyond the decrypt window',
    call: () => admin.putRing({ params: params({ decryptWindowMs: 5000, ticketLifetimeMs: 6000 }) }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /ticket_lifetime_ms/,
  },
  {
    name: 'negative max session age',
    call: () => admin.putRing({ params: params({ maxSessionAgeMs: -1 }) }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /max_session_age_ms/,
  },
  {
    name: 'PutRing without params',
    call: () => admin.putRing({ params: undefined }),
    code: grpc.status.INVALID_ARGUMENT,
    message: /params/,
  },
  {
    name: 'stale expected epoch',
    call: () => admin.rotate({ ring, expectedEpoch: 999, reason: '' }),
    code: grpc.status.FAILED_PRECONDITION,
    message: /epoch 1\b/,
  },
  {
    name: 'a reader calling Rotate',
    call: () => reader.rotate({ ring, reason: '' }),
    code: grpc.status.PERMISSION_DENIED,
  },
  {
    name: 'a reader calling RevokeKey',
    call: async () => reader.revokeKey({ ring, keyName: await activeName(), reason: '' }),
    code: grpc.status.PERMISSION_DENIED,
  },
  {
    name: 'a reader calling PutRing',
    call: () => reader.putRing({ params: params() }),
    code: grpc.status.PERMISSION_DENIED,
  },
  {
    name: 'a certificate with no role',
    call: () => stranger.getKeySet({ ring, omitSecrets: true }),
    code: grpc.status.PERMISSION_DENIED,
  },
  {
    name: 'no client certificate',
    call: () => anonymous.getKeySet({ ring, omitSecrets: true }),
    code: grpc.status.UNAUTHENTICATED,
  },
  {
    name: 'no client certificate (Rotate)',
    call: () => anonymous.rotate({ ring, reason: '' }),
    code: grpc.status.UNAUTHENTICATED,
  },
];

for (const row of cases) {
  test(`bad input: ${row.name} → ${grpc.status[row.code]}, nothing stored changes`, async () => {
    const before = await dumpRing();
    const { code, details } = await statusOf(row.call());
    assert.equal(grpc.status[code], grpc.status[row.code], details);
    if (row.message) assert.match(details, row.message);
    assert.equal(await dumpRing(), before);
  });
}

test('bad input on a watch stream: the stream fails with INVALID_ARGUMENT / NOT_FOUND', async () => {
  const before = await dumpRing();
  for (const [request, code] of [
    [{ ring, nodeId: 'n', heartbeatIntervalMs: 50 }, grpc.status.INVALID_ARGUMENT],
    [{ ring, nodeId: '', heartbeatIntervalMs: 0 }, grpc.status.INVALID_ARGUMENT],
    [{ ring: 'nope', nodeId: 'n', heartbeatIntervalMs: 0 }, grpc.status.NOT_FOUND],
  ] as const) {
    const failure = await new Promise<grpc.ServiceError>((resolve) => {
      const call = reader.raw.watchKeySet(request);
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    assert.equal(grpc.status[failure.code], grpc.status[code]);
  }
  assert.equal(await dumpRing(), before);
});

test('a reader may get, watch and ack; secrets come only when asked for', async () => {
  const withSecrets = (await reader.getKeySet({ ring, omitSecrets: false })).keySet!;
  assert.ok(withSecrets.keys.every((k) => k.secret.length === 32));
  const watcher = watch(reader, ring, 'reader-node');
  await eventually(() => lastEpoch(watcher) > 0);
  const ack = await reader.ackKeySet({ ring, nodeId: 'reader-node', epoch: lastEpoch(watcher) });
  assert.equal(ack.ackCoverage, 1);
  watcher.cancel();
});

test('two replicas racing Rotate with the same expected epoch: exactly one wins', async () => {
  const epoch = (await admin.getKeySet({ ring, omitSecrets: true })).keySet!.epoch;
  const results = await Promise.allSettled([
    admin.rotate({ ring, expectedEpoch: epoch, reason: 'race a' }),
    admin2.rotate({ ring, expectedEpoch: epoch, reason: 'race b' }),
  ]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  const error = lost[0]!.reason as grpc.ServiceError;
  assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
  assert.match(error.details, new RegExp(`epoch ${epoch + 1}\\b`));
  assert.equal((await admin.getKeySet({ ring, omitSecrets: true })).keySet!.epoch, epoch + 1);
});

test('revoking the ACTIVE key over RPC: gone from every set, replaced at once, listed as revoked', async () => {
  const watcher = watch(reader, ring, 'revoke-node');
  await eventually(() => lastEpoch(watcher) > 0);
  const name = await activeName();
  const response = await admin.revokeKey({ ring, keyName: name, reason: 'compromised' });
  const keySet = response.keySet!;
  assert.ok(!keySet.keys.some((k) => k.name.equals(name)));
  assert.ok(keySet.revokedKeyNames.some((n) => n.equals(name)));
  assert.ok(keySet.keys.some((k) => k.state === 2 && k.activatesAtMs <= keySet.serverTimeMs));
  await eventually(() => lastEpoch(watcher) === keySet.epoch);
  assert.ok(!watcher.keySets.at(-1)!.keys.some((k) => k.name.equals(name)));
  watcher.cancel();
});

test('service-wide dump: no Redis key of any type (BullMQ included) holds a secret', async () => {
  await admin.rotate({ ring, reason: 'more keys' });
  const secrets = (await admin.getKeySet({ ring, omitSecrets: false })).keySet!.keys.map((k) => k.secret);
  assert.ok(secrets.length >= 2);
  const keys = await probe.keys('*');
  assert.ok(
    keys.some((k) => k.includes('rotation')),
    'BullMQ keys are part of the dump',
  );
  const chunks: Buffer[] = [];
  for (const key of keys) chunks.push(Buffer.from(key), (await probe.dumpBuffer(key)) ?? Buffer.alloc(0));
  for (const key of keys) {
    const type = await probe.type(key);
    if (type === 'hash') chunks.push(Buffer.from(JSON.stringify(await probe.hgetall(key))));
    if (type === 'string') chunks.push((await probe.getBuffer(key)) ?? Buffer.alloc(0));
  }
  const dump = Buffer.concat(chunks);
  const text = dump.toString('latin1');
  for (const secret of secrets) {
    for (const form of [secret, Buffer.from(engineAeadKey(secret))]) {
      assert.equal(dump.indexOf(form), -1);
      assert.ok(!text.includes(form.toString('hex')));
      assert.ok(!text.includes(form.toString('base64')));
    }
  }
});
