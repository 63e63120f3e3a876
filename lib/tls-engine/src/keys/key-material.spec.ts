import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import {
  derivationLabels,
  engineAeadKey,
  haproxyTicketKey,
  nginxTicketKeyFile,
  node128Keys,
  nodeTicketKeys,
  openssl256Keys,
} from './key-material.js';

const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
const name = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

// node:crypto's HKDF is an independent implementation of RFC 5869.
const reference = (label: string, length: number) =>
  Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), label, length));

test('derivation matches RFC 5869 HKDF-SHA256 as node:crypto computes it', () => {
  assert.deepEqual(Buffer.from(engineAeadKey(secret)), reference(derivationLabels.engineAead, 32));
  for (const terminator of ['nginx', 'haproxy'] as const) {
    const openssl = reference(derivationLabels[`${terminator}256`], 64);
    assert.deepEqual(Buffer.from(openssl256Keys(secret, terminator).hmacKey), openssl.subarray(0, 32));
    assert.deepEqual(Buffer.from(openssl256Keys(secret, terminator).aesKey), openssl.subarray(32));
  }
  const node = reference(derivationLabels.node128, 32);
  assert.deepEqual(Buffer.from(node128Keys(secret).hmacKey), node.subarray(0, 16));
  assert.deepEqual(Buffer.from(node128Keys(secret).aesKey), node.subarray(16));
});

test('labels separate formats: no derived key equals another or the secret', () => {
  const all = [
    engineAeadKey(secret),
    openssl256Keys(secret, 'nginx').hmacKey,
    openssl256Keys(secret, 'nginx').aesKey,
    openssl256Keys(secret, 'haproxy').hmacKey,
    openssl256Keys(secret, 'haproxy').aesKey,
    node128Keys(secret).hmacKey,
    node128Keys(secret).aesKey,
    secret,
  ].map((bytes) => Buffer.from(bytes).toString('hex').slice(0, 32));
  assert.equal(new Set(all).size, all.length);
});

test('file layouts: nginx name|hmac|aes, HAProxy name|aes|hmac, Node name|hmac16|aes16', () => {
  const forNginx = openssl256Keys(secret, 'nginx');
  const nginx = nginxTicketKeyFile(name, secret);
  assert.equal(nginx.length, 80);
  assert.deepEqual(nginx, Buffer.concat([name, forNginx.hmacKey, forNginx.aesKey]));
  const forHaproxy = openssl256Keys(secret, 'haproxy');
  const haproxy = haproxyTicketKey(name, secret);
  assert.equal(haproxy.length, 80);
  assert.deepEqual(haproxy, Buffer.concat([name, forHaproxy.aesKey, forHaproxy.hmacKey]));
  const node = nodeTicketKeys(name, secret);
  assert.equal(node.length, 48);
  assert.deepEqual(node, Buffer.concat([name, node128Keys(secret).hmacKey, node128Keys(secret).aesKey]));
});

test('wrong sizes are refused with a message that quotes no bytes', () => {
  assert.throws(() => engineAeadKey(new Uint8Array(31)), /secret is 32 bytes, got 31/);
  assert.throws(() => nginxTicketKeyFile(new Uint8Array(15), secret), /key name is 16 bytes, got 15/);
});
