// Acks over real mTLS with a real Redis: an ack counts only for streams the
// same certificate identity holds under that node id, coverage counts
// streams (not ids), a future epoch is refused, early promotion cannot be
// triggered by a caller speaking for another node, and the default node id
// differs between processes on one host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { mtlsSecurity } from '@keyfleet/service-kit';
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
let replica: RunningTicketKeysServer;
let admin: TestClient;
let nodeA: TestClient;
let nodeB: TestClient;

const ring = 'acked';

before(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url);
  pki = createTestPki(await freePort());
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(
    rolesPath,
    JSON.stringify({ admin: ['cn:kf-admin'], [`node:${ring}`]: ['cn:node-a', 'cn:node-b'] }),
  );
  prefix = randomPrefix('ack');
  replica = await startReplica(redis.url, prefix, {
    watcherRefreshMs: 200,
    security: mtlsSecurity({
      certPath: pki.leaf.chainPath,
      keyPath: pki.leaf.keyPath,
      clientCaPath: pki.root.certPath,
      rolesPath,
    }),
  });
  const as = (name: string) => {
    const cert = pki.issueClient(name);
    return connect(
      replica.port,
      grpc.credentials.createSsl(
        Buffer.from(pki.root.certPem() + pki.intermediate.certPem()),
        Buffer.from(cert.keyPem()),
        Buffer.from(cert.chainPem()),
      ),
    );
  };
  admin = as('kf-admin');
  nodeA = as('node-a');
  nodeB = as('node-b');
  await admin.putRing({
    params: {
      ring,
      rotationIntervalMs: 3_600_000,
      propagationMs: 600_000,
      decryptWindowMs: 0,
      ticketLifetimeMs: 0,
      maxSessionAgeMs: 0,
      bindServerName: false,
      promoteOnFullAck: true,
    },
  });
});

after(async () => {
  for (const client of [admin, nodeA, nodeB]) client?.close();
  await replica?.stop(500);
  probe?.disconnect();
  pki?.remove();
  await redis?.stop();
});

const pendingCount = async () =>
  (await admin.getKeySet({ ring, omitSecrets: true })).keySet!.keys.filter((key) => key.state === 1).length;

test('an ack for another node’s id is not counted and promotes nothing; the node’s own ack does', async () => {
  const stream = watch(nodeA, ring, 'edge-1');
  await eventually(() => lastEpoch(stream) > 0);
  const rotated = await admin.rotate({ ring, reason: 'pending key' });
  const epoch = rotated.keySet!.epoch;
  await eventually(() => lastEpoch(stream) === epoch, 10_000, 'the new epoch on the stream');
  assert.equal(await pendingCount(), 1);
  await eventually(async () => (await probe.hlen(redisKeys(prefix).ring(ring).watchers)) === 1);

  // node-b holds no stream under edge-1: speaking for it counts for nothing.
  const spoofed = await nodeB.ackKeySet({ ring, nodeId: 'edge-1', epoch });
  assert.equal(spoofed.ackCoverage, 0);
  assert.equal(await pendingCount(), 1, 'no early promotion on a spoofed ack');

  const own = await nodeA.ackKeySet({ ring, nodeId: 'edge-1', epoch });
  assert.equal(own.ackCoverage, 1);
  await eventually(async () => (await pendingCount()) === 0, 10_000, 'promotion on the real full ack');
  stream.cancel();
});

test('coverage counts streams: two callers sharing a node id are two watchers', async () => {
  const a = watch(nodeA, ring, 'shared-id');
  const b = watch(nodeB, ring, 'shared-id');
  await eventually(() => lastEpoch(a) > 0 && lastEpoch(b) > 0);
  await eventually(async () => (await probe.hlen(redisKeys(prefix).ring(ring).watchers)) === 2);
  const epoch = lastEpoch(a);
  assert.equal((await nodeA.ackKeySet({ ring, nodeId: 'shared-id', epoch })).ackCoverage, 0.5);
  assert.equal((await nodeB.ackKeySet({ ring, nodeId: 'shared-id', epoch })).ackCoverage, 1);
  a.cancel();
  b.cancel();
});

test('a future epoch is refused with INVALID_ARGUMENT and stores nothing', async () => {
  const stream = watch(nodeA, ring, 'edge-2');
  await eventually(() => lastEpoch(stream) > 0);
  const acksKey = redisKeys(prefix).ring(ring).acks;
  const before = JSON.stringify(await probe.hgetall(acksKey));
  const { code, details } = await statusOf(
    nodeA.ackKeySet({ ring, nodeId: 'edge-2', epoch: lastEpoch(stream) + 1 }),
  );
  assert.equal(grpc.status[code], 'INVALID_ARGUMENT');
  assert.match(details, /^epoch: .*ahead/);
  assert.equal(JSON.stringify(await probe.hgetall(acksKey)), before);
  stream.cancel();
});

test('the default node id differs between two processes on one host', () => {
  const script = "import { defaultNodeId } from '@keyfleet/tls-engine'; console.log(defaultNodeId());";
  const run = () =>
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    }).trim();
  const [first, second] = [run(), run()];
  assert.match(first, /^[\x21-\x7e]{1,128}$/);
  assert.notEqual(first, second);
});
