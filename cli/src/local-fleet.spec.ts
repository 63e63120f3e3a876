import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  environmentHasCredentials,
  localFleetConfigPath,
  readLocalFleetConfig,
  removeLocalFleetConfig,
  writeLocalFleetConfig,
} from './local-fleet.js';

function withStateDir(body: (dir: string) => void) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyfleet-local-fleet-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fleet = { ticketKeys: '127.0.0.1:1051', ocspFetch: '127.0.0.1:1052', insecure: true as const };
/** A pid that has certainly exited: a child that ran and was reaped. */
const deadPid = spawnSync(process.execPath, ['-e', '']).pid;

test('the config lives in KEYFLEET_STATE_DIR, else in the project’s .keyfleet/', () => {
  assert.equal(localFleetConfigPath({ KEYFLEET_STATE_DIR: '/srv/kf' }), '/srv/kf/client.json');
  assert.equal(localFleetConfigPath({}), path.resolve(import.meta.dirname, '../../.keyfleet/client.json'));
});

test('a running start’s config is read back; a dead one’s, or a malformed one, is none', () => {
  withStateDir((dir) => {
    const env = { KEYFLEET_STATE_DIR: dir };
    assert.equal(readLocalFleetConfig(env), undefined);
    writeLocalFleetConfig(dir, { ...fleet, pid: process.pid });
    assert.deepEqual(readLocalFleetConfig(env), { ...fleet, pid: process.pid });
    writeLocalFleetConfig(dir, { ...fleet, pid: deadPid });
    assert.equal(readLocalFleetConfig(env), undefined, 'the start that wrote it has exited');
    writeFileSync(path.join(dir, 'client.json'), '{"ticketKeys": 1');
    assert.equal(readLocalFleetConfig(env), undefined);
    writeFileSync(
      path.join(dir, 'client.json'),
      JSON.stringify({ ...fleet, insecure: false, pid: process.pid }),
    );
    assert.equal(readLocalFleetConfig(env), undefined, 'only a plain-text dev fleet is described');
  });
});

test('a stopping start removes its own config, never a newer start’s', () => {
  withStateDir((dir) => {
    writeLocalFleetConfig(dir, { ...fleet, pid: process.pid });
    removeLocalFleetConfig(dir, deadPid);
    assert.ok(existsSync(path.join(dir, 'client.json')));
    removeLocalFleetConfig(dir, process.pid);
    assert.ok(!existsSync(path.join(dir, 'client.json')));
  });
});

test('any credential variable in the environment keeps the local config’s plain text out', () => {
  assert.equal(environmentHasCredentials({}), false);
  assert.equal(environmentHasCredentials({ KEYFLEET_INSECURE_DEV: '' }), false);
  for (const name of [
    'KEYFLEET_INSECURE_DEV',
    'KEYFLEET_CLIENT_CA',
    'KEYFLEET_CLIENT_CERT',
    'KEYFLEET_CLIENT_KEY',
  ]) {
    assert.equal(environmentHasCredentials({ [name]: 'x' }), true, name);
  }
});
