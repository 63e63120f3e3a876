import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { KEY_NAME_BYTES, KEY_SECRET_BYTES } from './ticket-key.js';

/**
 * Every format's key material comes from the one 32-byte secret through
 * HKDF-SHA256 with its own label, so a key leaked from one consumer's format
 * says nothing about another's.
 *
 * nginx and HAProxy get separate labels although both seal with OpenSSL's own
 * ticket format (AES-256-CBC + HMAC-SHA256): a ticket from one would not resume
 * on the other anyway (each sets its own session-id context, which OpenSSL
 * checks after decrypting), so sharing would buy nothing, while separate
 * material means a key leaked from one terminator opens none of the other's
 * tickets. Node's per-ticket hook and its 48-byte `ticketKeys` share one label
 * on purpose (AES-128-CBC + a 16-byte HMAC key): a Node server using the hook
 * and one fed a static file resume each other when their session-id contexts
 * match.
 */
export const derivationLabels = {
  engineAead: 'keyfleet/v1 engine xchacha20-poly1305',
  nginx256: 'keyfleet/v1 nginx aes-256-cbc hmac-sha256',
  haproxy256: 'keyfleet/v1 haproxy aes-256-cbc hmac-sha256',
  node128: 'keyfleet/v1 node aes-128-cbc hmac-sha256',
} as const;

function derive(secret: Uint8Array, label: string, length: number): Uint8Array {
  if (secret.length !== KEY_SECRET_BYTES) {
    throw new RangeError(`a ticket key secret is ${KEY_SECRET_BYTES} bytes, got ${secret.length}`);
  }
  return hkdf(sha256, secret, undefined, new TextEncoder().encode(label), length);
}

function checkName(name: Uint8Array): void {
  if (name.length !== KEY_NAME_BYTES)
    throw new RangeError(`a key name is ${KEY_NAME_BYTES} bytes, got ${name.length}`);
}

/** The engine codec's XChaCha20-Poly1305 key. */
export function engineAeadKey(secret: Uint8Array): Uint8Array {
  return derive(secret, derivationLabels.engineAead, 32);
}

/** Keys for OpenSSL's own ticket format under AES-256-CBC, for one terminator. */
export function openssl256Keys(
  secret: Uint8Array,
  terminator: 'nginx' | 'haproxy',
): { hmacKey: Uint8Array; aesKey: Uint8Array } {
  const label = terminator === 'nginx' ? derivationLabels.nginx256 : derivationLabels.haproxy256;
  const material = derive(secret, label, 64);
  return { hmacKey: material.subarray(0, 32), aesKey: material.subarray(32, 64) };
}

/** Keys for Node's tickets (AES-128-CBC; Node's static format takes a 16-byte HMAC key). */
export function node128Keys(secret: Uint8Array): { hmacKey: Uint8Array; aesKey: Uint8Array } {
  const material = derive(secret, derivationLabels.node128, 32);
  return { hmacKey: material.subarray(0, 16), aesKey: material.subarray(16, 32) };
}

/** nginx `ssl_session_ticket_key` file: 80 bytes, name | HMAC 32 | AES 32. */
export function nginxTicketKeyFile(name: Uint8Array, secret: Uint8Array): Buffer {
  checkName(name);
  const { hmacKey, aesKey } = openssl256Keys(secret, 'nginx');
  return Buffer.concat([name, hmacKey, aesKey]);
}

/** One HAProxy `tls-ticket-keys` entry: 80 bytes, name | AES 32 | HMAC 32 (another order than nginx). */
export function haproxyTicketKey(name: Uint8Array, secret: Uint8Array): Buffer {
  checkName(name);
  const { hmacKey, aesKey } = openssl256Keys(secret, 'haproxy');
  return Buffer.concat([name, aesKey, hmacKey]);
}

/** Node's 48-byte `ticketKeys`: name | HMAC 16 | AES 16. */
export function nodeTicketKeys(name: Uint8Array, secret: Uint8Array): Buffer {
  checkName(name);
  const { hmacKey, aesKey } = node128Keys(secret);
  return Buffer.concat([name, hmacKey, aesKey]);
}
