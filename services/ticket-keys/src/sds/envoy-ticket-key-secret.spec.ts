import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyState, type KeySet } from '@keyfleet/proto';
import { nginxTicketKeyFile } from '@keyfleet/tls-engine';
import { envoyTicketKeySecret, ringOfResource } from './envoy-ticket-key-secret.js';

const minute = 60_000;
const hour = 60 * minute;
const key = (id: number, publishedAtMs: number, activatesAtMs: number, retiresAtMs = 0) => ({
  name: Buffer.alloc(16, id),
  secret: Buffer.alloc(32, 100 + id),
  state: KeyState.UNSPECIFIED,
  publishedAtMs,
  activatesAtMs,
  retiresAtMs,
  expiresAtMs: 0,
});
const keySet = (epoch: number, keys: ReturnType<typeof key>[]): KeySet => ({
  ring: 'edge',
  epoch,
  keys,
  params: {
    ring: 'edge',
    rotationIntervalMs: hour,
    propagationMs: minute,
    decryptWindowMs: 2 * hour,
    ticketLifetimeMs: 2 * hour,
    maxSessionAgeMs: 0,
    bindServerName: false,
    promoteOnFullAck: false,
  },
  revokedKeyNames: [],
  serverTimeMs: 0,
});
const hexNames = (secret: ReturnType<typeof envoyTicketKeySecret>) =>
  secret!.secret.session_ticket_keys!.keys.map((k) => k.inline_bytes.subarray(0, 16).toString('hex'));

test('resource names: ticket-keys/<ring>', () => {
  assert.equal(ringOfResource('ticket-keys/edge'), 'edge');
  assert.equal(ringOfResource('staple/abc'), undefined);
});

test('ACTIVE first, then PENDING, then DECRYPT_ONLY; 80-byte nginx-layout keys; the version follows the order', () => {
  const set = keySet(5, [key(1, 0, 0), key(2, hour, hour + minute), key(3, 2 * hour, 2 * hour + minute)]);
  const beforeActivation = envoyTicketKeySecret('ticket-keys/edge', set, 2 * hour + 1000)!;
  assert.deepEqual(hexNames(beforeActivation), ['02'.repeat(16), '03'.repeat(16), '01'.repeat(16)]);
  assert.deepEqual(
    beforeActivation.secret.session_ticket_keys!.keys[0]!.inline_bytes,
    nginxTicketKeyFile(Buffer.alloc(16, 2), Buffer.alloc(32, 102)),
  );
  assert.equal(beforeActivation.nextChangeAtMs, 2 * hour + minute);
  const afterActivation = envoyTicketKeySecret('ticket-keys/edge', set, 2 * hour + minute + 1000)!;
  assert.deepEqual(hexNames(afterActivation), ['03'.repeat(16), '02'.repeat(16), '01'.repeat(16)]);
  assert.notEqual(afterActivation.version, beforeActivation.version, 'same epoch, new order, new version');
  assert.match(afterActivation.version, /^5-[0-9a-f]{16}$/);
});

test('no key that can encrypt: nothing to send (Envoy must not get an empty list)', () => {
  assert.equal(envoyTicketKeySecret('ticket-keys/edge', keySet(1, []), 0), undefined);
});
