/**
 * The bytes keyfleet hands Envoy over SDS are the bytes nginx reads: the
 * 80-byte keys of a `ticket-keys/<ring>` secret (FetchSecrets, on Envoy's
 * protos), written one per file as nginx's ssl_session_ticket_key files, make
 * a real nginx seal under the first key and resume its tickets, and they equal
 * what `keyfleet export --format nginx` writes for the same ring, slot by slot.
 * Over a real ticket-keys service and Redis, with a ring that holds an ACTIVE
 * and a PENDING key, so the order is checked too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TicketKeyServiceClient } from '@keyfleet/proto';
import { fetchSecrets, secretDiscoveryClient, unpackSecret } from '@keyfleet/service-kit';
import { keyNameHex } from '@keyfleet/tls-engine';
import type { RunningTicketKeysServer } from '@keyfleet/ticket-keys';
import {
  createTestPki,
  freePort,
  makeTempDir,
  runSClient,
  sessionTicketKeyName,
  startProcess,
  startRedis,
  waitForListening,
  writeNginxConfig,
  type RunningProcess,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { runCli } from './cli-process.js';
import { startTicketKeys } from './ticket-keys-service.js';

const ring = 'envoy-bytes';
const temp = makeTempDir('sds-nginx-bytes');
let redis: TestRedis;
let pki: TestPki;
let server: RunningTicketKeysServer;
let nginx: RunningProcess | undefined;

function call<Res>(invoke: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown) {
  return new Promise<Res>((resolve, reject) =>
    invoke((error, response) => (error ? reject(error) : resolve(response))),
  );
}

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  server = (await startTicketKeys(redis.url, temp.path)).server;
  const client = new TicketKeyServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  try {
    await call((cb) =>
      client.putRing(
        {
          params: {
            ring,
            rotationIntervalMs: 3_600_000,
            // The rotation below stays PENDING for the whole test.
            propagationMs: 600_000,
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
    await call((cb) => client.rotate({ ring, reason: 'a PENDING key beside the ACTIVE one' }, cb));
  } finally {
    client.close();
  }
});

after(async () => {
  await nginx?.stop();
  await server?.stop();
  await redis?.stop();
  pki?.remove();
  temp.remove();
});

test('the SDS secret’s keys, as nginx key files, make nginx resume, and equal keyfleet export --format nginx', async () => {
  const sds = secretDiscoveryClient(`127.0.0.1:${server.port}`);
  const response = await fetchSecrets(sds, {
    node: { id: 'bytes-check', cluster: 'test' },
    resource_names: [`ticket-keys/${ring}`],
  }).finally(() => sds.close());
  const sdsKeys = unpackSecret(response.resources[0]!).session_ticket_keys!.keys.map((key) =>
    Buffer.from(key.inline_bytes),
  );
  assert.equal(sdsKeys.length, 2, 'ACTIVE and PENDING');
  for (const key of sdsKeys) assert.equal(key.length, 80);

  // keyfleet export, with as many slots as the ring has keys (no filler).
  const exportDir = path.join(temp.path, 'export');
  const exported = await runCli([
    '--ticket-keys',
    `127.0.0.1:${server.port}`,
    'export',
    ring,
    '--format',
    'nginx',
    '--out',
    exportDir,
    '--slots',
    String(sdsKeys.length),
  ]);
  assert.equal(exported.code, 0, exported.stderr);
  sdsKeys.forEach((key, slot) =>
    assert.deepEqual(
      readFileSync(path.join(exportDir, `key-${slot}.key`)),
      key,
      `slot ${slot}: the same 80 bytes`,
    ),
  );

  // nginx on the SDS bytes, written as they came.
  const dir = path.join(temp.path, 'nginx');
  mkdirSync(path.join(dir, 'keys'), { recursive: true });
  const keyFiles = sdsKeys.map((key, slot) => {
    const file = path.join(dir, 'keys', `sds-${slot}.key`);
    writeFileSync(file, key, { mode: 0o600 });
    return file;
  });
  const port = await freePort();
  const conf = writeNginxConfig({
    dir,
    port,
    chainPath: pki.leaf.chainPath,
    keyPath: pki.leaf.keyPath,
    ticketKeyFiles: keyFiles,
  });
  nginx = startProcess('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;']);
  await waitForListening(port).catch((error: Error) => {
    throw new Error(`nginx did not start: ${nginx?.output()}`, { cause: error });
  });

  for (const tls of ['1.2', '1.3'] as const) {
    const sessOut = path.join(temp.path, `nginx-${tls}.sess`);
    const first = await runSClient({ port, tls, sessOut });
    assert.ok(first.connected && !first.reused, first.output);
    assert.equal(
      sessionTicketKeyName(sessOut),
      keyNameHex(sdsKeys[0]!.subarray(0, 16)),
      'nginx seals under the first',
    );
    const again = await runSClient({ port, tls, sessIn: sessOut });
    assert.ok(again.reused, `TLS ${tls}: nginx resumes its ticket:\n${again.output}`);
  }
});
