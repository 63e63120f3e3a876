import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponderLimiter, responderOrigin } from './responder-limiter.js';

test('no more than the limit run at once per responder, others are independent', async () => {
  const limiter = new ResponderLimiter(2);
  const running = new Map<string, number>();
  const peak = new Map<string, number>();
  const releases: Array<() => void> = [];
  const task = (responder: string) =>
    limiter.run(responder, async () => {
      running.set(responder, (running.get(responder) ?? 0) + 1);
      peak.set(responder, Math.max(peak.get(responder) ?? 0, running.get(responder)!));
      await new Promise<void>((resolve) => releases.push(resolve));
      running.set(responder, running.get(responder)! - 1);
      return responder;
    });
  const all = [...Array.from({ length: 5 }, () => task('a')), ...Array.from({ length: 3 }, () => task('b'))];
  await new Promise((r) => setImmediate(r));
  assert.equal(releases.length, 4, 'two for a, two for b start at once');
  assert.equal(limiter.load('a'), 5);
  while (releases.length) {
    releases.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(all), ['a', 'a', 'a', 'a', 'a', 'b', 'b', 'b']);
  assert.equal(peak.get('a'), 2);
  assert.equal(peak.get('b'), 2);
  assert.equal(limiter.load('a'), 0);
});

test('a failing task frees its slot', async () => {
  const limiter = new ResponderLimiter(1);
  await assert.rejects(limiter.run('a', () => Promise.reject(new Error('boom'))));
  assert.equal(await limiter.run('a', () => Promise.resolve(7)), 7);
});

test('responderOrigin keeps scheme, host and port only', () => {
  assert.equal(responderOrigin('http://ocsp.example.test:8080/a/b?c'), 'http://ocsp.example.test:8080');
  assert.equal(responderOrigin('not a url'), 'invalid-url');
});
