/**
 * The staple side of the CLI against the real ocsp-fetch service (real Redis,
 * real `openssl ocsp` responder): register, list, get with the DER written
 * out, status across both services, and `sync files` writing staples once and
 * then following WatchStaples as a new certificate registers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Registry } from 'prom-client';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import { createOcspFetchServer, type OcspFetchServer } from '@keyfleet/ocsp-fetch';
import {
  createTestPki,
  freePort,
  makeTempDir,
  randomPrefix,
  startOcspResponder,
  startRedis,
  type OcspResponder,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { certificateIdOfPem } from '../src/sync/staple-files.js';
import { runCli, spawnCli, stopCli } from './cli-process.js';
import { startTicketKeys } from './ticket-keys-service.js';
import { eventually } from './tls-client.js';

const temp = makeTempDir('staples-cli');
let redis: TestRedis;
let pki: TestPki;
let responder: OcspResponder;
let ocspFetch: OcspFetchServer;
let ticketKeys: Awaited<ReturnType<typeof startTicketKeys>>;
let globalArgs: string[];
const sidecars: ChildProcess[] = [];

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki, { nextUpdateDays: 1 });
  // ticket-keys first: started after ocsp-fetch on the same Redis it makes
  // ocsp-fetch's staple hub reload (reported to its owner).
  ticketKeys = await startTicketKeys(redis.url, temp.path);
  ocspFetch = await createOcspFetchServer({
    // The test responders listen on loopback.
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    security: insecureDevSecurity(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: randomPrefix('cli-staples'),
    registry: new Registry(),
    logger: createLogger('ocsp-fetch-cli-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
  });
  globalArgs = [
    '--ocsp-fetch',
    `127.0.0.1:${ocspFetch.grpcPort}`,
    '--ticket-keys',
    `127.0.0.1:${ticketKeys.server.port}`,
    '--json',
  ];
});

after(async () => {
  for (const sidecar of sidecars) await stopCli(sidecar);
  await ocspFetch?.stop();
  await ticketKeys?.server.stop();
  await responder?.stop();
  await redis?.stop();
  pki?.remove();
  temp.remove();
});

const cli = (...args: string[]) => runCli([...globalArgs, ...args]);
const leafId = () => certificateIdOfPem(pki.leaf.certPem());

test('staple register, list until good, get --der-out writes the response openssl reads', async () => {
  const registered = await cli('staple', 'register', pki.leaf.chainPath);
  assert.equal(registered.code, 0, registered.stderr);
  const view = registered.json<{ created: boolean; certificate: { id: string } }>();
  assert.equal(view.created, true);
  assert.equal(view.certificate.id, leafId());

  await eventually(
    'the staple is fetched',
    async () => {
      const list = await cli('staple', 'list');
      return list
        .json<{ id: string; status: string }[]>()
        .some((c) => c.id === leafId() && c.status === 'good');
    },
    30_000,
  );

  const derOut = path.join(temp.path, 'leaf.der');
  const got = await cli('staple', 'get', leafId(), '--der-out', derOut);
  assert.equal(got.code, 0, got.stderr);
  assert.ok(got.json<{ staple: { secondsUntilNextUpdate: number } }>().staple.secondsUntilNextUpdate > 3600);
  const text = execFileSync('openssl', ['ocsp', '-respin', derOut, '-resp_text', '-noverify'], {
    encoding: 'utf8',
  });
  assert.match(text, /Cert Status: good/);

  const bad = await cli('staple', 'get', '../../etc/passwd');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /64 lower-case hex digits/);
});

test('status reports rings and certificates from both services', async () => {
  const put = await cli('ring', 'put', 'edge');
  assert.equal(put.code, 0, put.stderr);
  const status = await cli('status');
  assert.equal(status.code, 0, status.stderr);
  const view = status.json<{ rings: { ring: string }[]; certificates: { id: string; status: string }[] }>();
  assert.ok(view.rings.some((ring) => ring.ring === 'edge'));
  assert.ok(view.certificates.some((c) => c.id === leafId() && c.status === 'good'));
});

test('sync files writes staples once, then follows WatchStaples as a certificate registers', async () => {
  const onceDir = path.join(temp.path, 'once');
  execFileSync('mkdir', ['-p', onceDir]);
  const once = await cli('sync', 'files', '--staple-dir', onceDir, '--once');
  assert.equal(once.code, 0, once.stderr);
  const written = path.join(onceDir, `${leafId()}.der`);
  assert.ok(existsSync(written));

  const followDir = path.join(temp.path, 'follow');
  execFileSync('mkdir', ['-p', followDir]);
  const sidecar = spawnCli([
    ...globalArgs,
    'sync',
    'files',
    '--staple-dir',
    followDir,
    '--node-id',
    'files-1',
  ]);
  sidecars.push(sidecar.child);
  // Starting a tsx process can take long on a loaded machine: wait for it first.
  await eventually(
    'the sidecar starts',
    async () => sidecar.lines.some((line) => line.includes('sync started')),
    60_000,
  );
  await eventually('the existing staple is written (from the snapshot)', async () =>
    existsSync(path.join(followDir, `${leafId()}.der`)),
  ).catch((error: Error) => {
    throw new Error(`${error.message}; sidecar said: ${JSON.stringify(sidecar.lines)}`);
  });

  const second = pki.issueLeaf('second', { dnsNames: ['second.test'] });
  // openssl ocsp rereads its index one request late (see test-support).
  responder.refreshIndex(second);
  const secondId = certificateIdOfPem(second.certPem());
  const registered = await cli('staple', 'register', second.chainPath);
  assert.equal(registered.code, 0, registered.stderr);
  const target = path.join(followDir, `${secondId}.der`);
  await eventually(
    'the new certificate’s staple is pushed and written',
    async () => existsSync(target),
    30_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; sidecar said: ${JSON.stringify(sidecar.lines)}`);
  });
  assert.match(
    execFileSync('openssl', ['ocsp', '-respin', target, '-resp_text', '-noverify'], { encoding: 'utf8' }),
    /Cert Status: good/,
  );
  assert.ok(readFileSync(target).length > 100);
  assert.equal(await stopCli(sidecar.child), 0, sidecar.lines.join('\n'));
});

test('staple unregister forgets a certificate; a second unregister and a malformed id fail', async () => {
  const bad = await cli('staple', 'unregister', 'not-an-id');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /64 lower-case hex digits/);
  const removed = await cli('staple', 'unregister', leafId());
  assert.equal(removed.code, 0, removed.stderr);
  const list = await cli('staple', 'list');
  assert.ok(!list.json<{ id: string }[]>().some((c) => c.id === leafId()));
  const again = await cli('staple', 'unregister', leafId());
  assert.equal(again.code, 1);
  assert.match(again.stderr, /NOT_FOUND|not registered|not found/i);
});
