/**
 * The `keyfleet` CLI as an operator runs it (a child process, --json) against
 * a real ticket-keys service over a real Redis: rings, rotation with
 * compare-and-set, status, revocation, export, watch, KEK rewrap, and clear
 * errors. No command ever prints key material.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TicketKeyServiceClient, type KeySet } from '@keyfleet/proto';
import { haproxyTicketKey, keyNameHex } from '@keyfleet/tls-engine';
import { newKekLine, type RunningTicketKeysServer } from '@keyfleet/ticket-keys';
import { makeTempDir, startRedis, type TestRedis } from '@keyfleet/test-support';
import { runCli, spawnCli, stopCli } from './cli-process.js';
import { startTicketKeys } from './ticket-keys-service.js';
import { eventually } from './tls-client.js';

const temp = makeTempDir('cli');
let redis: TestRedis;
let service: Awaited<ReturnType<typeof startTicketKeys>>;
let server: RunningTicketKeysServer;
let client: TicketKeyServiceClient;
let address: string;

before(async () => {
  redis = await startRedis();
  service = await startTicketKeys(redis.url, temp.path);
  server = service.server;
  address = `127.0.0.1:${server.port}`;
  client = new TicketKeyServiceClient(address, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  await server?.stop();
  await redis?.stop();
  temp.remove();
});

const cli = (...args: string[]) => runCli(['--ticket-keys', address, '--json', ...args]);

/** The key set with secrets, straight from the service, to look for leaks and check exports. */
function keySetWithSecrets(ring: string): Promise<KeySet> {
  return new Promise((resolve, reject) =>
    client.getKeySet({ ring, omitSecrets: false }, (error, response) =>
      error ? reject(error) : resolve(response.keySet!),
    ),
  );
}

async function assertNoSecrets(output: string, ring: string) {
  for (const key of (await keySetWithSecrets(ring)).keys) {
    const secret = Buffer.from(key.secret);
    for (const form of [
      secret.toString('hex'),
      secret.toString('base64'),
      secret.toString('hex').slice(0, 16),
    ]) {
      assert.ok(!output.includes(form), 'a key secret was printed');
    }
  }
}

test('ring put, ring list, rotate with compare-and-set, status', async () => {
  const put = await cli(
    'ring',
    'put',
    'edge',
    '--rotation-interval-ms',
    '3600000',
    '--propagation-ms',
    '60000',
  );
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.json<{ created: boolean }>().created, true);

  const list = await cli('ring', 'list');
  assert.equal(list.code, 0, list.stderr);
  const rings = list.json<{ ring: string; epoch: number; params: { propagationMs: number } }[]>();
  const edge = rings.find((ring) => ring.ring === 'edge');
  assert.equal(edge?.params.propagationMs, 60000);

  const rotated = await cli('rotate', 'edge', '--expected-epoch', String(edge.epoch), '--reason', 'cli test');
  assert.equal(rotated.code, 0, rotated.stderr);
  const published = rotated.json<{ publishedKeyName: string; keySet: { keys: { name: string }[] } }>();
  assert.match(published.publishedKeyName, /^[0-9a-f]{32}$/);
  assert.ok(published.keySet.keys.some((key) => key.name === published.publishedKeyName));

  const stale = await cli('rotate', 'edge', '--expected-epoch', String(edge.epoch));
  assert.equal(stale.code, 1, 'a stale expected epoch is refused');
  assert.match(stale.stderr, /epoch/i);

  const status = await cli('status', '--ring', 'edge', '--no-staples');
  assert.equal(status.code, 0, status.stderr);
  const view = status.json<{
    rings: { ring: string; keySet: { keys: { name: string; state: string }[] } }[];
  }>();
  assert.deepEqual(
    view.rings.map((ring) => ring.ring),
    ['edge'],
  );
  const states = view.rings[0]!.keySet.keys.map((key) => key.state).sort();
  assert.deepEqual(states, ['active', 'pending']);
  for (const output of [put.stdout, list.stdout, rotated.stdout, status.stdout])
    await assertNoSecrets(output, 'edge');

  const text = await runCli(['--ticket-keys', address, 'status', '--ring', 'edge', '--no-staples']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /RING\s+EPOCH\s+ACTIVE KEY/);
});

test('export writes the formats the terminators read, from the keys the service holds', async () => {
  const out = path.join(temp.path, 'tickets.keys');
  const exported = await cli('export', 'edge', '--format', 'haproxy', '--out', out);
  assert.equal(exported.code, 0, exported.stderr);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  const keySet = await keySetWithSecrets('edge');
  const active =
    keySet.keys.find((key) => key.activatesAtMs <= Date.now() && key.state === 2) ?? keySet.keys[0]!;
  const encrypting = Buffer.from(lines[1]!, 'base64');
  assert.equal(keyNameHex(encrypting.subarray(0, 16)), keyNameHex(active.name));
  assert.deepEqual(encrypting, haproxyTicketKey(active.name, active.secret));
  await assertNoSecrets(exported.stdout, 'edge');

  const bad = await cli('export', 'edge', '--format', 'envoy', '--out', out);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--format must be nginx, haproxy or node/);
});

test('watch prints each key set as it changes, never secrets, and stops on SIGTERM', async () => {
  const watcher = spawnCli(['--ticket-keys', address, '--json', 'watch', 'edge', '--node-id', 'cli-watch']);
  await eventually('the first key set', async () => watcher.lines.some((line) => line.startsWith('{')));
  const firstEpoch = (JSON.parse(watcher.lines.find((line) => line.startsWith('{'))!) as { epoch: number })
    .epoch;
  const rotated = await cli('rotate', 'edge');
  assert.equal(rotated.code, 0, rotated.stderr);
  await eventually('a newer key set', async () =>
    watcher.lines.some(
      (line) => line.startsWith('{') && (JSON.parse(line) as { epoch: number }).epoch > firstEpoch,
    ),
  );
  assert.equal(await stopCli(watcher.child), 0, watcher.lines.join('\n'));
  await assertNoSecrets(watcher.lines.join('\n'), 'edge');
});

test('revoke removes a key everywhere; bad input gets a clear error and changes nothing', async () => {
  const before = await keySetWithSecrets('edge');
  const victim = keyNameHex(before.keys[0]!.name);
  const malformed = await cli('revoke', 'edge', 'not-a-key-name');
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /a key name is 32 hex digits/);
  const unknownRing = await cli('revoke', 'nope', victim);
  assert.equal(unknownRing.code, 1);
  assert.equal((await keySetWithSecrets('edge')).epoch, before.epoch, 'failed calls changed nothing');

  const revoked = await cli('revoke', 'edge', victim, '--reason', 'cli test');
  assert.equal(revoked.code, 0, revoked.stderr);
  const view = revoked.json<{ keys: { name: string }[]; revokedKeyNames: string[] }>();
  assert.ok(!view.keys.some((key) => key.name === victim));
  assert.ok(view.revokedKeyNames.includes(victim));
});

test('kek rewrap rewraps every key under the new first KEK and prints no KEK', async () => {
  const before = await keySetWithSecrets('edge');
  writeFileSync(service.kekFile, `${newKekLine('kek-new')}\n${service.oldKekLine}\n`);
  const rewrap = await runCli([
    '--json',
    'kek',
    'rewrap',
    '--redis-url',
    redis.url,
    '--kek-file',
    service.kekFile,
    '--key-prefix',
    service.keyPrefix,
  ]);
  assert.equal(rewrap.code, 0, rewrap.stderr);
  const result = rewrap.json<{ rewrapped: number; kekId: string }>();
  assert.equal(result.kekId, 'kek-new');
  assert.ok(result.rewrapped >= before.keys.length, `rewrapped ${result.rewrapped}`);
  assert.ok(
    !rewrap.stdout.includes(readFileSync(service.kekFile, 'utf8').split(':')[1]!.trim().slice(0, 12)),
  );

  const missing = await runCli(['kek', 'rewrap', '--redis-url', redis.url], { KEYFLEET_KEK_FILE: '' });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /KEK_FILE|kek-file/);
});
