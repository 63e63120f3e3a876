// Pinned tools are fetched once: with the cache filled (npm test's pretest has
// built kustomize), asking again needs neither Go nor npm, so nothing is fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '@keyfleet/test-support';

const root = path.resolve(import.meta.dirname, '..');
const script = path.join(root, 'scripts/pinned-tools.mjs');
const pinned = JSON.parse(readFileSync(path.join(root, 'scripts/pinned-tools.json'), 'utf8')) as {
  node: Record<string, string>;
  kustomize: { version: string };
};

/** A PATH holding only sh and tar: no go, no npm. */
function offlinePath() {
  const dir = makeTempDir('path');
  for (const program of ['sh', 'tar']) {
    const real = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    symlinkSync(real, path.join(dir.path, program));
  }
  return dir;
}

function ask(args: string[], pathDir: string) {
  return spawnSync(process.execPath, [script, ...args], { env: { PATH: pathDir }, encoding: 'utf8' });
}

test('the cached kustomize is found again without Go, and is the pinned version', () => {
  const bin = offlinePath();
  try {
    const result = ask(['kustomize'], bin.path);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '', 'nothing fetched or built');
    const binary = result.stdout.trim();
    assert.match(binary, new RegExp(`/\\.cache/tools/kustomize-${pinned.kustomize.version}/kustomize$`));
    assert.match(
      execFileSync(binary, ['version'], { encoding: 'utf8' }),
      new RegExp(pinned.kustomize.version),
    );
  } finally {
    bin.remove();
  }
});

for (const [major, version] of Object.entries(pinned.node)) {
  const dir = path.join(root, '.cache/node-runtimes', `v${version}`);
  test(
    `a cached Node ${major} runtime is found again without npm, with bin/node and include/node`,
    { skip: existsSync(path.join(dir, 'bin/node')) ? false : `not fetched here (bash .ci/run fetches it)` },
    () => {
      const bin = offlinePath();
      try {
        const result = ask(['node', major], bin.path);
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stderr, '', 'nothing fetched');
        assert.equal(result.stdout.trim(), dir);
        assert.equal(
          execFileSync(path.join(dir, 'bin/node'), ['--version'], { encoding: 'utf8' }).trim(),
          `v${version}`,
        );
        assert.ok(existsSync(path.join(dir, 'include/node/node_api.h')));
      } finally {
        bin.remove();
      }
    },
  );
}

test('an unpinned Node major is refused, naming the pinned ones', () => {
  const bin = offlinePath();
  try {
    const result = ask(['node', '19'], bin.path);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no Node 19 is pinned/);
  } finally {
    bin.remove();
  }
});
