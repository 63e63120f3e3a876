import { randomBytes } from 'node:crypto';
import { KEY_NAME_BYTES, KEY_SECRET_BYTES, type TicketKeyRecord } from '@keyfleet/tls-engine';
import type { KekRing } from './kek.js';

/**
 * A key as stored in `<prefix>:{<ring>}:keys`: public times plus the secret
 * wrapped under a KEK. JSON with short field names; the field of the hash is
 * the name in hex.
 */
interface StoredKeyJson {
  /** publishedAtMs */ p: number;
  /** activatesAtMs */ a: number;
  /** KEK id */ k: string;
  /** base64 of nonce | ciphertext | tag */ w: string;
}

/** A fresh key from the CSPRNG: 16-byte name, 32-byte secret. */
export function newTicketKey(publishedAtMs: number, activatesAtMs: number): TicketKeyRecord {
  return {
    name: new Uint8Array(randomBytes(KEY_NAME_BYTES)),
    secret: new Uint8Array(randomBytes(KEY_SECRET_BYTES)),
    publishedAtMs,
    activatesAtMs,
  };
}

export function encodeKeyRecord(ring: string, key: TicketKeyRecord, keks: KekRing): string {
  const sealed = keks.wrap(ring, key.name, key.secret);
  const json: StoredKeyJson = {
    p: key.publishedAtMs,
    a: key.activatesAtMs,
    k: sealed.kekId,
    w: Buffer.from(sealed.wrapped).toString('base64'),
  };
  return JSON.stringify(json);
}

/** The record's public part and KEK id, without unwrapping. Throws on a malformed record. */
export function parseKeyRecord(
  nameHex: string,
  text: string,
): { name: Uint8Array; publishedAtMs: number; activatesAtMs: number; kekId: string; wrapped: Uint8Array } {
  const parsed = JSON.parse(text) as Partial<StoredKeyJson>;
  if (
    !/^[0-9a-f]{32}$/.test(nameHex) ||
    !Number.isSafeInteger(parsed.p) ||
    !Number.isSafeInteger(parsed.a) ||
    typeof parsed.k !== 'string' ||
    typeof parsed.w !== 'string'
  ) {
    throw new Error(`key record ${nameHex.slice(0, 32)} is malformed`);
  }
  return {
    name: new Uint8Array(Buffer.from(nameHex, 'hex')),
    publishedAtMs: parsed.p!,
    activatesAtMs: parsed.a!,
    kekId: parsed.k,
    wrapped: new Uint8Array(Buffer.from(parsed.w, 'base64')),
  };
}

export function decodeKeyRecord(ring: string, nameHex: string, text: string, keks: KekRing): TicketKeyRecord {
  const record = parseKeyRecord(nameHex, text);
  const secret = keks.unwrap(ring, record.name, { kekId: record.kekId, wrapped: record.wrapped });
  return {
    name: record.name,
    secret,
    publishedAtMs: record.publishedAtMs,
    activatesAtMs: record.activatesAtMs,
  };
}
