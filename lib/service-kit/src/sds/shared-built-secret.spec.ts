import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedBuiltSecret } from './shared-built-secret.js';
import type { BuiltSecret } from './secret-source.js';

function counting(nextChangeAtMs?: number) {
  let builds = 0;
  const build = (input: { name: string }, nowMs: number): BuiltSecret => {
    builds++;
    return { secret: { name: input.name }, version: `${input.name}@${nowMs}`, nextChangeAtMs };
  };
  return { build, builds: () => builds };
}

test('the same input is built once while the secret cannot have changed', () => {
  let now = 1000;
  const { build, builds } = counting(5000);
  const shared = sharedBuiltSecret(build, () => now);
  const ring = { name: 'a' };
  const first = shared(ring);
  now = 4999;
  assert.equal(shared(ring), first, 'the same object for every stream');
  assert.equal(builds(), 1);
});

test('a replaced input or a passed nextChangeAtMs builds again', () => {
  let now = 1000;
  const { build, builds } = counting(5000);
  const shared = sharedBuiltSecret(build, () => now);
  const ring = { name: 'a' };
  const first = shared(ring);
  const replaced = shared({ name: 'a' });
  assert.notEqual(replaced, first);
  now = 5000;
  const later = shared(ring);
  assert.notEqual(later, first);
  assert.equal(later!.version, 'a@5000');
  assert.equal(builds(), 3);
});

test('no input, no secret; a build with no change time is kept until the input is replaced', () => {
  let now = 0;
  const { build, builds } = counting(undefined);
  const shared = sharedBuiltSecret(build, () => now);
  assert.equal(shared(undefined), undefined);
  const ring = { name: 'b' };
  const first = shared(ring);
  now = Number.MAX_SAFE_INTEGER;
  assert.equal(shared(ring), first);
  assert.equal(builds(), 1);
});
