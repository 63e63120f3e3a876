// The quick-start commands stop at once, with the exact install command, when a
// system program is missing (here: a PATH that has node and sh but no redis-server),
// or when a pinned tool cannot be built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '@keyfleet/test-support';

const script = path.resolve(import.meta.dirname, 'ensure-deps.mjs');

function pathWith(programs: string[]) {
  const dir = makeTempDir('path');
  for (const program of programs) {
    const real = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    symlinkSync(real, path.join(dir.path, program));
  }
  return dir;
}

test('npm test stops with the apt-get line when redis-server is missing', () => {
  const bin = pathWith(['sh', 'openssl', 'ss', 'nginx', 'haproxy', 'promtool', 'prometheus']);
  try {
    const result = spawnSync(process.execPath, [script, '--for-tests'], {
      env: { PATH: bin.path },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /Missing: redis-server\./);
    assert.match(result.stderr, /sudo apt-get update && sudo apt-get install -y redis-server\n/);
  } finally {
    bin.remove();
  }
});

test('kustomize is built from the Go module proxy; without Go, the message says what to install', () => {
  const bin = pathWith(['sh', 'redis-server', 'openssl', 'ss', 'nginx', 'haproxy', 'promtool', 'prometheus']);
  const emptyCache = makeTempDir('cache');
  try {
    const result = spawnSync(process.execPath, [script, '--for-tests'], {
      env: { PATH: bin.path, KEYFLEET_CACHE_DIR: emptyCache.path },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /go install sigs\.k8s\.io\/kustomize\/kustomize\/v5@v\d+\.\d+\.\d+/);
    assert.match(result.stderr, /go is not on PATH: install Go/);
  } finally {
    bin.remove();
    emptyCache.remove();
  }
});

test('npm start needs no redis-server when REDIS_URL is set, but still needs openssl', () => {
  const bin = pathWith(['sh']);
  try {
    const result = spawnSync(process.execPath, [script], {
      env: { PATH: bin.path, REDIS_URL: 'redis://127.0.0.1:1' },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /Missing: openssl\./);
    assert.doesNotMatch(result.stderr, /redis-server/);
  } finally {
    bin.remove();
  }
});

test('the native TLS port: built once per Node ABI; without g++ the build stops with the apt-get line', () => {
  const builder = path.resolve(import.meta.dirname, 'build-native.mjs');
  // Up to date after the pretest: a second run builds nothing and says nothing.
  const again = spawnSync(process.execPath, [builder], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stderr, '');
  // Forced, with make and python3 on PATH but no g++.
  const bin = pathWith(['sh', 'make', 'python3']);
  try {
    const result = spawnSync(process.execPath, [builder, '-f'], {
      env: { PATH: bin.path },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /Missing: g\+\+ \(needed to build the engine's native TLS port\)/);
    assert.match(result.stderr, /sudo apt-get update && sudo apt-get install -y g\+\+\n/);
  } finally {
    bin.remove();
  }
});
