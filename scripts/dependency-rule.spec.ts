import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '@keyfleet/test-support';
import { forbiddenDependencyPaths, forbiddenImports } from './dependency-rule.js';

function fixture(files: Record<string, string>) {
  const dir = makeTempDir('deps');
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir.path, file)), { recursive: true });
    writeFileSync(path.join(dir.path, file), text);
  }
  return dir;
}

const manifest = (name: string, dependencies: Record<string, string> = {}) =>
  JSON.stringify({ name, dependencies });

test('a direct or transitive Redis dependency is named with its path', () => {
  const dir = fixture({
    'package.json': manifest('engine', { helper: '1', bullmq: '5' }),
    'node_modules/helper/package.json': manifest('helper', { ioredis: '5' }),
  });
  try {
    assert.deepEqual(forbiddenDependencyPaths(dir.path).sort(), [
      'engine → bullmq',
      'engine → helper → ioredis',
    ]);
  } finally {
    dir.remove();
  }
});

test('every import form of a forbidden package is caught; allowed ones are not', () => {
  const dir = fixture({
    'src/a.ts': "import { Redis } from 'ioredis';\nimport '@keyfleet/service-kit';\n",
    'src/b.ts': "const q = await import('bullmq');\nexport * from 'redis';\n",
    'src/ok.ts': "import { x } from '@noble/ciphers';\nimport './local.js';\n",
  });
  try {
    const found = forbiddenImports(dir.path).sort();
    assert.deepEqual(found, [
      'src/a.ts imports @keyfleet/service-kit',
      'src/a.ts imports ioredis',
      'src/b.ts imports bullmq',
      'src/b.ts imports redis',
    ]);
  } finally {
    dir.remove();
  }
});

test('the real lib/tls-engine passes the rule', () => {
  const engine = path.resolve(import.meta.dirname, '..', 'lib', 'tls-engine');
  assert.deepEqual([...forbiddenDependencyPaths(engine), ...forbiddenImports(engine)], []);
});
