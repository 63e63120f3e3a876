import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import { checkRingName, compileRingParams } from './ring-params.js';

test('defaults fill every zero duration', () => {
  const params = compileRingParams({ ring: 'default' });
  assert.deepEqual(params, {
    ring: 'default',
    rotationIntervalMs: 3_600_000,
    propagationMs: 60_000,
    decryptWindowMs: 43_200_000,
    ticketLifetimeMs: 43_200_000,
    maxSessionAgeMs: 0,
    bindServerName: false,
    promoteOnFullAck: false,
  });
});

test('ticket lifetime defaults to the decrypt window that is given', () => {
  const params = compileRingParams({ ring: 'a', decryptWindowMs: 5000 });
  assert.equal(params.ticketLifetimeMs, 5000);
});

test('a short interval gets a default propagation that still fits inside it', () => {
  const params = compileRingParams({ ring: 'a', rotationIntervalMs: 1000 });
  assert.ok(params.propagationMs < params.rotationIntervalMs);
  assert.ok(params.propagationMs >= 100);
});

const rejected: { name: string; input: Parameters<typeof compileRingParams>[0]; field: string }[] = [
  {
    name: 'interval below 1 s',
    input: { ring: 'a', rotationIntervalMs: 999 },
    field: 'rotation_interval_ms',
  },
  {
    name: 'interval above 7 d',
    input: { ring: 'a', rotationIntervalMs: 604_800_001 },
    field: 'rotation_interval_ms',
  },
  { name: 'negative interval', input: { ring: 'a', rotationIntervalMs: -5 }, field: 'rotation_interval_ms' },
  {
    name: 'fractional interval',
    input: { ring: 'a', rotationIntervalMs: 1000.5 },
    field: 'rotation_interval_ms',
  },
  { name: 'propagation below 100', input: { ring: 'a', propagationMs: 99 }, field: 'propagation_ms' },
  {
    name: 'propagation not below interval',
    input: { ring: 'a', rotationIntervalMs: 5000, propagationMs: 5000 },
    field: 'propagation_ms',
  },
  {
    name: 'decrypt window below 1 s',
    input: { ring: 'a', decryptWindowMs: 999 },
    field: 'decrypt_window_ms',
  },
  {
    name: 'decrypt window above 7 d',
    input: { ring: 'a', decryptWindowMs: 604_800_001 },
    field: 'decrypt_window_ms',
  },
  {
    name: 'lifetime longer than the decrypt window',
    input: { ring: 'a', decryptWindowMs: 5000, ticketLifetimeMs: 5001 },
    field: 'ticket_lifetime_ms',
  },
  { name: 'NaN', input: { ring: 'a', decryptWindowMs: Number.NaN }, field: 'decrypt_window_ms' },
  { name: 'empty ring', input: { ring: '' }, field: 'params.ring' },
  { name: 'upper-case ring', input: { ring: 'Default' }, field: 'params.ring' },
  { name: 'ring starting with a dot', input: { ring: '.a' }, field: 'params.ring' },
  { name: 'ring of 64 characters', input: { ring: 'a'.repeat(64) }, field: 'params.ring' },
  { name: 'ring with a hash tag brace', input: { ring: 'a}b' }, field: 'params.ring' },
];

for (const { name, input, field } of rejected) {
  test(`rejects ${name}, naming the field`, () => {
    assert.throws(
      () => compileRingParams(input),
      (error: unknown) =>
        error instanceof KeyfleetError &&
        error.code === ErrorCode.InvalidArgument &&
        error.message.includes(field),
    );
  });
}

test('ring names: 63 characters of the alphabet pass', () => {
  assert.equal(checkRingName('a'.repeat(63)), 'a'.repeat(63));
  assert.equal(checkRingName('0.tenant_b-c'), '0.tenant_b-c');
});
