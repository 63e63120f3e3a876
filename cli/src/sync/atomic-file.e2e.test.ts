import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '@keyfleet/test-support';
import { removeFileIfPresent, writeFileAtomic } from './atomic-file.js';

const temp = makeTempDir('atomic');
after(() => temp.remove());

test('writes owner-only, reports a change once, leaves no temporary file', async () => {
  const file = path.join(temp.path, 'key-0.key');
  const bytes = Buffer.alloc(80, 7);
  assert.equal(await writeFileAtomic(file, bytes), true);
  assert.deepEqual(readFileSync(file), bytes);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(await writeFileAtomic(file, Buffer.alloc(80, 7)), false, 'same bytes: no change');
  assert.equal(await writeFileAtomic(file, Buffer.alloc(80, 8)), true);
  assert.deepEqual(readdirSync(temp.path), ['key-0.key']);
});

test('a reader never sees a torn file while it is replaced again and again', async () => {
  const file = path.join(temp.path, 'big.der');
  const versions = [Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)];
  writeFileSync(file, versions[0]!);
  let reads = 0;
  let writing = true;
  const reader = (async () => {
    while (writing) {
      const seen = readFileSync(file);
      assert.ok(seen.equals(versions[0]!) || seen.equals(versions[1]!), 'whole old or whole new');
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  for (let round = 0; round < 20; round++) await writeFileAtomic(file, versions[round % 2]!);
  writing = false;
  await reader;
  assert.ok(reads > 0);
});

test('a write into a missing directory fails and creates nothing', async () => {
  const missing = path.join(temp.path, 'nope', 'key-0.key');
  await assert.rejects(writeFileAtomic(missing, Buffer.alloc(1)), /ENOENT/);
  assert.equal(await removeFileIfPresent(missing), false);
});
