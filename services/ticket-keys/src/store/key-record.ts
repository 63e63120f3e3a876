import { randomBytes } from 'node:crypto';
import { KEY_NAME_BYTES, KEY_SECRET_BYTES, type TicketKeyRecord } from '@keyfleet/tls-engine';
import type { KekRing } from './kek.js';

/**
 * A key as stored in `<prefix>:{<ring>}:keys`: public times plus the secret
 * wrapped under a KEK. JSON with short field names; the field of the hash is
 * the name in hex. Version 2 (`v: 2`) binds the times and the state to the
 * wrapped secret (the wrap's AAD holds them), so a record whose activation
 * time was changed, or one relabelled as another state, no longer opens.
 * Records without `v` (version 1, AAD = ring | name | KEK id) are still read;
 * every write, and `keyfleet kek rewrap`, stores version 2.
 */
interface StoredKeyJson {
  /** format version: 2; absent for version 1 */ v?: number;
  /** publishedAtMs */ p: number;
  /** activatesAtMs */ a: number;
  /** state: "live" (revoked keys are removed and their names kept apart) */ s?: string;
  /** KEK id */ k: string;
  /** base64 of nonce | ciphertext | tag */ w: string;
}

const recordVersion = 2;
const liveState = 'live';

/** What version 2 authenticates beside the secret: the format, the times and the state. */
function recordContext(publishedAtMs: number, activatesAtMs: number, state: string): string {
  return `v${recordVersion}|p=${publishedAtMs}|a=${activatesAtMs}|s=${state}`;
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
  const sealed = keks.wrap(
    ring,
    key.name,
    key.secret,
    recordContext(key.publishedAtMs, key.activatesAtMs, liveState),
  );
  const json: StoredKeyJson = {
    v: recordVersion,
    p: key.publishedAtMs,
    a: key.activatesAtMs,
    s: liveState,
    k: sealed.kekId,
    w: Buffer.from(sealed.wrapped).toString('base64'),
  };
  return JSON.stringify(json);
}

/** The record's public part and KEK id, without unwrapping. Throws on a malformed record. */
export function parseKeyRecord(
  nameHex: string,
  text: string,
): {
  name: Uint8Array;
  publishedAtMs: number;
  activatesAtMs: number;
  kekId: string;
  wrapped: Uint8Array;
  /** The AAD context of a version 2 record; undefined for version 1. */
  context: string | undefined;
} {
  const parsed = JSON.parse(text) as Partial<StoredKeyJson>;
  const v2 = parsed.v === recordVersion;
  if (
    !/^[0-9a-f]{32}$/.test(nameHex) ||
    (parsed.v !== undefined && !v2) ||
    (v2 && parsed.s !== liveState) ||
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
    context: v2 ? recordContext(parsed.p!, parsed.a!, parsed.s!) : undefined,
  };
}

export function decodeKeyRecord(ring: string, nameHex: string, text: string, keks: KekRing): TicketKeyRecord {
  const record = parseKeyRecord(nameHex, text);
  const secret = keks.unwrap(
    ring,
    record.name,
    { kekId: record.kekId, wrapped: record.wrapped },
    record.context,
  );
  return {
    name: record.name,
    secret,
    publishedAtMs: record.publishedAtMs,
    activatesAtMs: record.activatesAtMs,
  };
}
