/**
 * Two real nginx instances fed by the nginx sync target from hand-built key
 * sets (no services): they resume each other's tickets, keep resuming old
 * tickets through a rotation while issuing new ones under the new key, stop
 * once the old key's decrypt window has passed, and staple from the file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  createTestPki,
  freePort,
  makeTempDir,
  requireCommand,
  startOcspResponder,
  startProcess,
  waitForListening,
  writeNginxConfig,
  type OcspResponder,
  type RunningProcess,
  type TestPki,
} from '@keyfleet/test-support';
import { createFillerKeys } from '../src/sync/filler-keys.js';
import { nginxTarget } from '../src/sync/nginx-target.js';
import { nginxTicketKeyFileName } from '../src/sync/nginx-ticket-keys.js';
import { stapleDestinations } from '../src/sync/staple-destinations.js';
import type { SyncTarget } from '../src/sync/sync-target.js';
import { hexName, hourMs, minuteMs, testKey, testKeySet } from './key-sets.js';
import { eventually, handshake } from './tls-client.js';
import { fetchStapleRecord } from './staple-fixture.js';

requireCommand('nginx');
const SLOTS = 4;
const temp = makeTempDir('nginx-sync');
let pki: TestPki;
let responder: OcspResponder;

interface NginxInstance {
  port: number;
  target: SyncTarget;
  process: RunningProcess;
}
const instances: NginxInstance[] = [];

// A ring through three stages: A alone; B active with A retired; C active
// after A's decrypt window has passed.
const [A, B, C] = [0xa1, 0xb2, 0xc3];
const keyA = testKey(A, 0, 0);
const keyB = testKey(B, hourMs, hourMs + minuteMs);
const keyC = testKey(C, 2 * hourMs, 2 * hourMs + minuteMs);
const stage1 = { set: testKeySet([keyA]), at: 30 * minuteMs };
const stage2 = { set: testKeySet([keyA, keyB]), at: hourMs + 2 * minuteMs };
const stage3 = { set: testKeySet([keyA, keyB, keyC]), at: 14 * hourMs };

async function startNginx(index: number): Promise<NginxInstance> {
  const dir = path.join(temp.path, `nginx-${index}`);
  mkdirSync(path.join(dir, 'keys'), { recursive: true });
  const port = await freePort();
  const conf = writeNginxConfig({
    dir,
    port,
    chainPath: pki.leaf.chainPath,
    keyPath: pki.leaf.keyPath,
    ticketKeyFiles: Array.from({ length: SLOTS }, (_, slot) =>
      path.join(dir, 'keys', nginxTicketKeyFileName(slot)),
    ),
    staplingFile: `${pki.leaf.chainPath}.ocsp`,
  });
  const targetOptions = {
    keyDir: path.join(dir, 'keys'),
    slotCount: SLOTS,
    staples: stapleDestinations({ certificatePaths: [pki.leaf.chainPath] }),
    // One set of filler keys for both, as one sidecar process would draw.
    filler: createFillerKeys(),
  };
  // nginx refuses to start without the files its config names: write them
  // first without a reload, as the init container does (`sync nginx --once
  // --reload-command ''`); a reload that failed would be owed to the next apply.
  const init = nginxTarget({ ...targetOptions, reloadCommand: [] });
  await init.applyKeySet(stage1.set, stage1.at);
  await init.applyStaples([fetchStapleRecord(pki, pki.leaf, Date.now() + hourMs)], Date.now());
  const target = nginxTarget({
    ...targetOptions,
    reloadCommand: ['nginx', '-p', dir, '-c', conf, '-s', 'reload'],
  });
  const process = startProcess('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;']);
  await waitForListening(port).catch((error: Error) => {
    throw new Error(`nginx did not start: ${process.output()}`, { cause: error });
  });
  return { port, target, process };
}

/** Applies a stage to every instance and waits until fresh tickets carry `expectedKey`. */
async function applyStage(stage: { set: ReturnType<typeof testKeySet>; at: number }, expectedKey: number) {
  for (const instance of instances) {
    const report = await instance.target.applyKeySet(stage.set, stage.at);
    assert.ok(report.changedFiles.length > 0, 'a rotation changes files');
    assert.equal(report.reloaded?.ok, true, report.reloaded?.output);
  }
  // A reload is asynchronous: old workers finish while new ones start.
  for (const [index, instance] of instances.entries()) {
    const sessOut = path.join(temp.path, `probe-${index}.pem`);
    await eventually(`nginx ${index} seals under ${hexName(expectedKey)}`, async () => {
      const probe = await handshake({
        port: instance.port,
        caFile: pki.root.certPath,
        tlsVersion: '1.2',
        sessOut,
      });
      return probe.ticketKeyNameHex === hexName(expectedKey);
    });
  }
}

before(async () => {
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki, { nextUpdateDays: 1 });
  instances.push(await startNginx(0), await startNginx(1));
});

after(async () => {
  for (const instance of instances) await instance.process.stop();
  await responder?.stop();
  pki?.remove();
  temp.remove();
});

const session = (name: string) => path.join(temp.path, `${name}.pem`);

test('an unchanged key set rewrites nothing and does not reload', async () => {
  const report = await instances[0]!.target.applyKeySet(stage1.set, stage1.at + minuteMs);
  assert.deepEqual(report.changedFiles, []);
  assert.equal(report.reloaded, undefined);
});

test('TLS 1.2 and 1.3: each instance resumes the other one`s tickets', async () => {
  const [first, second] = instances as [NginxInstance, NginxInstance];
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const sessOut = session(`cross-${tlsVersion}`);
    const full = await handshake({ port: first.port, caFile: pki.root.certPath, tlsVersion, sessOut });
    assert.equal(full.reused, false, full.output);
    assert.equal(full.ticketKeyNameHex, hexName(A), 'sealed under the ACTIVE key');
    const resumed = await handshake({
      port: second.port,
      caFile: pki.root.certPath,
      tlsVersion,
      sessIn: sessOut,
    });
    assert.equal(resumed.reused, true, `TLS ${tlsVersion}: ${resumed.output}`);
  }
});

test('through a rotation old tickets resume and are replaced under the new key; after the window they do not', async () => {
  const [first, second] = instances as [NginxInstance, NginxInstance];
  const ca = pki.root.certPath;
  const old = { '1.2': session('old-1.2'), '1.3': session('old-1.3') };
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const issued = await handshake({ port: first.port, caFile: ca, tlsVersion, sessOut: old[tlsVersion] });
    assert.equal(issued.ticketKeyNameHex, hexName(A));
  }

  await applyStage(stage2, B);
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const resumed = await handshake({ port: second.port, caFile: ca, tlsVersion, sessIn: old[tlsVersion] });
    assert.equal(resumed.reused, true, `TLS ${tlsVersion} ticket under the retired key: ${resumed.output}`);
  }
  // s_client saves the replacement ticket of a resumed session only in TLS 1.3
  // (post-handshake NewSessionTicket), so the renewal is checked there.
  const renewed = session('renewed');
  const resumed = await handshake({
    port: second.port,
    caFile: ca,
    tlsVersion: '1.3',
    sessIn: old['1.3'],
    sessOut: renewed,
  });
  assert.equal(resumed.reused, true);
  assert.equal(resumed.ticketKeyNameHex, hexName(B), 'the replacement is sealed under the ACTIVE key');

  await applyStage(stage3, C);
  for (const tlsVersion of ['1.2', '1.3'] as const) {
    const expired = await handshake({ port: first.port, caFile: ca, tlsVersion, sessIn: old[tlsVersion] });
    assert.equal(
      expired.reused,
      false,
      `TLS ${tlsVersion}: past its decrypt window the old key opens nothing`,
    );
  }
  const stillValid = await handshake({ port: first.port, caFile: ca, tlsVersion: '1.3', sessIn: renewed });
  assert.equal(stillValid.reused, true, 'the renewed ticket (key B, now DECRYPT_ONLY) still resumes');
});

test('staples: the synced DER is stapled; once expired it is withdrawn (tryLater), never served stale', async () => {
  const [first] = instances as [NginxInstance];
  const stapled = await handshake({
    port: first.port,
    caFile: pki.root.certPath,
    tlsVersion: '1.2',
    status: true,
  });
  assert.match(stapled.output, /OCSP Response Status: successful/);
  assert.match(stapled.output, /Cert Status: good/);

  const record = fetchStapleRecord(pki, pki.leaf, Date.now() + hourMs);
  const report = await first.target.applyStaples([record], record.staple!.nextUpdateMs + 1);
  assert.equal(report.reloaded?.ok, true, report.reloaded?.output);
  await eventually('the expired staple is withdrawn', async () => {
    const after = await handshake({
      port: first.port,
      caFile: pki.root.certPath,
      tlsVersion: '1.2',
      status: true,
    });
    return /OCSP Response Status: trylater/.test(after.output);
  });
});
