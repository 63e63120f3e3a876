/**
 * Two real HAProxy instances fed by the HAProxy sync target from hand-built
 * key sets (no services): they resume each other's tickets; a rotation goes in
 * live over the runtime API (`set ssl tls-key`, no reload) and old tickets
 * keep resuming while new ones are sealed under the new key; past the decrypt
 * window they stop; a restart from the rewritten file keeps the keys; staples
 * are served from the `.ocsp` file and replaced live (`set ssl ocsp-response`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createTestPki,
  freePort,
  makeTempDir,
  requireCommand,
  startOcspResponder,
  startProcess,
  waitForListening,
  writeHaproxyConfig,
  type OcspResponder,
  type RunningProcess,
  type TestPki,
} from '@keyfleet/test-support';
import { haproxyTarget } from '../src/sync/haproxy-target.js';
import { haproxyRuntimeApi } from '../src/sync/haproxy-runtime-api.js';
import { stapleDestinations } from '../src/sync/staple-destinations.js';
import type { SyncTarget } from '../src/sync/sync-target.js';
import { hexName, hourMs, minuteMs, testKey, testKeySet } from './key-sets.js';
import { eventually, handshake } from './tls-client.js';
import { fetchStapleRecord } from './staple-fixture.js';

requireCommand('haproxy');
const temp = makeTempDir('haproxy-sync');
let pki: TestPki;
let responder: OcspResponder;

interface HaproxyInstance {
  dir: string;
  port: number;
  config: string;
  target: SyncTarget;
  process: RunningProcess;
}
const instances: HaproxyInstance[] = [];

const [A, B, C] = [0xa1, 0xb2, 0xc3];
const keyA = testKey(A, 0, 0);
const keyB = testKey(B, hourMs, hourMs + minuteMs);
const keyC = testKey(C, 2 * hourMs, 2 * hourMs + minuteMs);
const stage1 = { set: testKeySet([keyA]), at: 30 * minuteMs };
const stage2 = { set: testKeySet([keyA, keyB]), at: hourMs + 2 * minuteMs };
const stage3 = { set: testKeySet([keyA, keyB, keyC]), at: 14 * hourMs };

async function runHaproxy(instance: Omit<HaproxyInstance, 'process'>): Promise<RunningProcess> {
  const process = startProcess('haproxy', ['-f', instance.config, '-db']);
  await waitForListening(instance.port).catch((error: Error) => {
    throw new Error(`haproxy did not start: ${process.output()}`, { cause: error });
  });
  return process;
}

async function startHaproxy(index: number): Promise<HaproxyInstance> {
  const dir = path.join(temp.path, `haproxy-${index}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const certFile = path.join(dir, 'site.pem');
  writeFileSync(certFile, pki.leaf.chainPem() + pki.leaf.keyPem());
  const ticketKeyFile = path.join(dir, 'tickets.keys');
  const socket = path.join(dir, 'admin.sock');
  const config = writeHaproxyConfig({ dir, port, certificatePem: certFile, ticketKeyFile, socket });
  const target = haproxyTarget({
    ticketKeyFile,
    runtimeApi: haproxyRuntimeApi(socket),
    reloadCommand: [],
    staples: stapleDestinations({ certificatePaths: [certFile] }),
  });
  // Before HAProxy runs there is no socket: write the files with a file-only target.
  const bootstrap = haproxyTarget({
    ticketKeyFile,
    runtimeApi: undefined,
    reloadCommand: [],
    staples: stapleDestinations({ certificatePaths: [certFile] }),
  });
  await bootstrap.applyKeySet(stage1.set, stage1.at);
  await bootstrap.applyStaples([fetchStapleRecord(pki, pki.leaf, Date.now() + hourMs)], Date.now());
  const base = { dir, port, config, target };
  return { ...base, process: await runHaproxy(base) };
}

before(async () => {
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki, { nextUpdateDays: 1 });
  instances.push(await startHaproxy(0), await startHaproxy(1));
});

after(async () => {
  for (const instance of instances) await instance.process.stop();
  await responder?.stop();
  pki?.remove();
  temp.remove();
});

const session = (name: string) => path.join(temp.path, `${name}.pem`);
const ca = () => pki.root.certPath;

test('TLS 1.2 and 1.3: each instance resumes the other one`s tickets', async () => {
  const [first, second] = instances as [HaproxyInstance, HaproxyInstance];
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const sessOut = session(`cross-${tlsVersion}`);
    const full = await handshake({ port: first.port, caFile: ca(), tlsVersion, sessOut });
    assert.equal(full.reused, false);
    assert.equal(full.ticketKeyNameHex, hexName(A), 'the penultimate line (the ACTIVE key) encrypts');
    const resumed = await handshake({ port: second.port, caFile: ca(), tlsVersion, sessIn: sessOut });
    assert.equal(resumed.reused, true, `TLS ${tlsVersion}: ${resumed.output}`);
  }
});

test('a rotation goes in live without a reload; old tickets resume and are renewed; past the window they do not', async () => {
  const [first, second] = instances as [HaproxyInstance, HaproxyInstance];
  const old = { '1.2': session('old-1.2'), '1.3': session('old-1.3') };
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    await handshake({ port: first.port, caFile: ca(), tlsVersion, sessOut: old[tlsVersion] });
  }
  const pids = instances.map((instance) => instance.process.child.pid);

  for (const instance of instances) {
    const report = await instance.target.applyKeySet(stage2.set, stage2.at);
    assert.ok(report.liveUpdates.length >= 1, 'keys pushed over the runtime API');
    assert.equal(report.reloaded, undefined, 'no reload');
    const again = await instance.target.applyKeySet(stage2.set, stage2.at);
    assert.deepEqual(again.liveUpdates, [], 'in step: nothing pushed');
  }
  const probe = await handshake({
    port: second.port,
    caFile: ca(),
    tlsVersion: '1.2',
    sessOut: session('probe'),
  });
  assert.equal(probe.ticketKeyNameHex, hexName(B), 'new tickets are sealed under the new ACTIVE key at once');
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const resumed = await handshake({ port: second.port, caFile: ca(), tlsVersion, sessIn: old[tlsVersion] });
    assert.equal(resumed.reused, true, `TLS ${tlsVersion} ticket under the retired key: ${resumed.output}`);
  }
  const renewed = session('renewed');
  const resumed = await handshake({
    port: first.port,
    caFile: ca(),
    tlsVersion: '1.3',
    sessIn: old['1.3'],
    sessOut: renewed,
  });
  assert.equal(resumed.reused, true);
  assert.equal(resumed.ticketKeyNameHex, hexName(B), 'the replacement is sealed under the ACTIVE key');

  for (const instance of instances) await instance.target.applyKeySet(stage3.set, stage3.at);
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const expired = await handshake({ port: second.port, caFile: ca(), tlsVersion, sessIn: old[tlsVersion] });
    assert.equal(
      expired.reused,
      false,
      `TLS ${tlsVersion}: past its decrypt window the old key opens nothing`,
    );
  }
  const stillValid = await handshake({ port: second.port, caFile: ca(), tlsVersion: '1.3', sessIn: renewed });
  assert.equal(stillValid.reused, true, 'the renewed ticket (key B, DECRYPT_ONLY) still resumes');
  assert.deepEqual(
    instances.map((instance) => instance.process.child.pid),
    pids,
    'the same processes served throughout',
  );

  // The file was rewritten too: a restarted HAProxy comes up with the same keys.
  const [restarted] = instances as [HaproxyInstance];
  await restarted.process.stop();
  restarted.process = await runHaproxy(restarted);
  const afterRestart = await handshake({
    port: restarted.port,
    caFile: ca(),
    tlsVersion: '1.3',
    sessIn: renewed,
  });
  assert.equal(afterRestart.reused, true, afterRestart.output);
});

test('staples: served from the .ocsp file at start, replaced live over the runtime API', async () => {
  const [first] = instances as [HaproxyInstance];
  const before = await handshake({ port: first.port, caFile: ca(), tlsVersion: '1.2', status: true });
  assert.match(before.output, /OCSP Response Status: successful/);
  assert.match(before.output, /Cert Status: good/);
  const thisUpdate = (output: string) => /This Update: (.+)/.exec(output)?.[1];
  // A newer response (thisUpdate has one-second resolution).
  await sleep(1100);
  const fresh = fetchStapleRecord(pki, pki.leaf, Date.now() + hourMs);
  const report = await first.target.applyStaples([fresh], Date.now());
  assert.deepEqual(report.liveUpdates, ['set ssl ocsp-response']);
  await eventually('the new staple is served', async () => {
    const after = await handshake({ port: first.port, caFile: ca(), tlsVersion: '1.2', status: true });
    return thisUpdate(after.output) !== undefined && thisUpdate(after.output) !== thisUpdate(before.output);
  });
  const unchanged = await first.target.applyStaples([fresh], Date.now());
  assert.deepEqual(unchanged.liveUpdates, [], 'the same staple is not pushed twice');
});
