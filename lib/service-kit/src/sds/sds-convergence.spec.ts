import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SdsConvergence } from './sds-convergence.js';

function tracker() {
  let now = 1_000;
  const observed: [string, number][] = [];
  const convergence = new SdsConvergence(
    () => now,
    (resource, seconds) => observed.push([resource, seconds]),
  );
  return { convergence, observed, advance: (ms: number) => (now += ms) };
}

test('observes the time from the first send to the last ACK, once', () => {
  const { convergence, observed, advance } = tracker();
  convergence.sent('ticket-keys/edge', 'v2', 1);
  advance(100);
  convergence.sent('ticket-keys/edge', 'v2', 2);
  advance(50);
  convergence.acked('ticket-keys/edge', 'v2', 1);
  assert.deepEqual(observed, []);
  advance(250);
  convergence.acked('ticket-keys/edge', 'v2', 2);
  convergence.acked('ticket-keys/edge', 'v2', 2);
  assert.deepEqual(observed, [['ticket-keys/edge', 0.4]]);
});

test('an ACK of another version, or from a stream not sent it, changes nothing', () => {
  const { convergence, observed } = tracker();
  convergence.sent('r', 'v2', 1);
  convergence.acked('r', 'v1', 1);
  convergence.acked('r', 'v2', 7);
  assert.equal(convergence.waiting('r'), 1);
  assert.deepEqual(observed, []);
});

test('a superseded version is dropped; the new one is timed from its own first send', () => {
  const { convergence, observed, advance } = tracker();
  convergence.sent('r', 'v2', 1);
  advance(1_000);
  convergence.sent('r', 'v3', 1);
  convergence.acked('r', 'v2', 1);
  advance(20);
  convergence.acked('r', 'v3', 1);
  assert.deepEqual(observed, [['r', 0.02]]);
});

test('a stream that leaves is not waited for; nothing is observed when nobody ACKed', () => {
  const { convergence, observed, advance } = tracker();
  convergence.sent('r', 'v2', 1);
  convergence.sent('r', 'v2', 2);
  advance(10);
  convergence.acked('r', 'v2', 1);
  convergence.left('r', 2);
  assert.deepEqual(observed, [['r', 0.01]]);
  convergence.sent('s', 'v1', 3);
  convergence.left('s', 3);
  assert.deepEqual(observed, [['r', 0.01]]);
  assert.equal(convergence.waiting('s'), 0);
});
