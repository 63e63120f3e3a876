import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import { heartbeatField, keyNameField, nodeIdField, reasonField, ringField } from './request-fields.js';

const rejects = (fn: () => unknown, field: string) =>
  assert.throws(fn, (error: unknown) => {
    return (
      error instanceof KeyfleetError &&
      error.code === ErrorCode.InvalidArgument &&
      error.message.startsWith(field)
    );
  });

const hostile = ['', ' ', '\u0000', 'a\nb', 'é', '{x}', 'x'.repeat(10_000), '../etc', 'A'];

test('ring names: hostile input is INVALID_ARGUMENT naming ring', () => {
  for (const ring of hostile) rejects(() => ringField(ring), 'ring');
  assert.equal(ringField('default'), 'default');
});

test('node ids: 1..128 printable ASCII', () => {
  for (const id of ['', ' a', 'a ', '\u0000', 'a\tb', 'ü', 'x'.repeat(129)])
    rejects(() => nodeIdField(id), 'node_id');
  assert.equal(nodeIdField('pod-7'), 'pod-7');
  assert.equal(nodeIdField('x'.repeat(128)), 'x'.repeat(128));
  assert.equal(nodeIdField('a b'), 'a b');
});

test('reasons: at most 256 characters', () => {
  rejects(() => reasonField('r'.repeat(257)), 'reason');
  assert.equal(reasonField('r'.repeat(256)).length, 256);
  assert.equal(reasonField(''), '');
});

test('heartbeats: 0 is the default, else 100..60000', () => {
  assert.equal(heartbeatField(0), 5000);
  assert.equal(heartbeatField(100), 100);
  for (const ms of [99, 60_001, -1, 1.5, Number.NaN])
    rejects(() => heartbeatField(ms), 'heartbeat_interval_ms');
});

test('key names: exactly 16 bytes', () => {
  for (const length of [0, 1, 15, 17, 4096]) rejects(() => keyNameField(new Uint8Array(length)), 'key_name');
  assert.equal(keyNameField(new Uint8Array(16).fill(0xab)), 'ab'.repeat(16));
});
