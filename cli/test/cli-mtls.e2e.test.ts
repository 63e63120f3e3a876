/**
 * The CLI over mTLS, as operators run it in production: an admin certificate
 * may rotate, a reader certificate may look but not rotate, and without
 * credentials the CLI says which variable is missing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createLogger, mtlsSecurity } from '@keyfleet/service-kit';
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
  startRedis,
  type IssuedCertificate,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { runCli } from './cli-process.js';

const temp = makeTempDir('cli-mtls');
let redis: TestRedis;
let pki: TestPki;
let server: RunningTicketKeysServer;
let admin: IssuedCertificate;
let reader: IssuedCertificate;

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  admin = pki.issueClient('ops-admin');
  reader = pki.issueClient('edge-node');
  const clientCa = path.join(temp.path, 'client-ca.pem');
  writeFileSync(clientCa, pki.intermediate.certPem() + pki.root.certPem());
  const roles = path.join(temp.path, 'roles.json');
  writeFileSync(roles, JSON.stringify({ admin: ['cn:ops-admin'], 'reader:edge': ['cn:edge-node'] }));
  const security = mtlsSecurity({
    certPath: pki.leaf.chainPath,
    keyPath: pki.leaf.keyPath,
    clientCaPath: clientCa,
    rolesPath: roles,
  });
  if (security.mode === 'mtls') await security.ready();
  server = await createTicketKeysServer({
    redisUrl: redis.url,
    keyPrefix: randomPrefix('cli-mtls'),
    keks: parseKekFile(newKekLine('kek-mtls')),
    security,
    address: '127.0.0.1:0',
    registry: new Registry(),
    logger: createLogger('ticket-keys-mtls-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    bootstrapRings: [],
    runScheduler: false,
  });
});

after(async () => {
  await server?.stop();
  await redis?.stop();
  pki?.remove();
  temp.remove();
});

const as = (identity: IssuedCertificate | undefined, ...args: string[]) =>
  runCli(['--ticket-keys', `localhost:${server.port}`, '--json', ...args], {
    KEYFLEET_INSECURE_DEV: '',
    KEYFLEET_CLIENT_CA: identity ? pki.root.certPath : '',
    KEYFLEET_CLIENT_CERT: identity?.chainPath ?? '',
    KEYFLEET_CLIENT_KEY: identity?.keyPath ?? '',
  });

test('an admin certificate creates a ring and rotates it', async () => {
  const put = await as(admin, 'ring', 'put', 'edge');
  assert.equal(put.code, 0, put.stderr);
  const rotated = await as(admin, 'rotate', 'edge', '--reason', 'mtls test');
  assert.equal(rotated.code, 0, rotated.stderr);
});

test('a reader certificate may list but not rotate; nothing changes', async () => {
  const before = await as(reader, 'ring', 'list');
  assert.equal(before.code, 0, before.stderr);
  const epoch = before.json<{ ring: string; epoch: number }[]>().find((ring) => ring.ring === 'edge')?.epoch;
  const denied = await as(reader, 'rotate', 'edge');
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /admin|permission/i);
  const after = await as(reader, 'ring', 'list');
  assert.equal(
    after.json<{ ring: string; epoch: number }[]>().find((ring) => ring.ring === 'edge')?.epoch,
    epoch,
  );
});

test('without credentials the CLI names the missing variable', async () => {
  const bare = await as(undefined, 'ring', 'list');
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /KEYFLEET_CLIENT_CA/);
});
