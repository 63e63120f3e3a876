import { randomFillSync } from 'node:crypto';
import { TicketReason, TicketStatus } from '@keyfleet/proto';
import type { KeySchedule, ScheduledKey, ScheduledKeyState } from '../keys/key-schedule.js';
import { KEY_NAME_BYTES, keyNameHex } from '../keys/ticket-key.js';
import { lookupTicketKey, openedTicketStatus } from '../keys/ticket-decision-table.js';
import {
  decodePlaintext,
  encodePlaintext,
  encodeRing,
  MIN_TICKET_BYTES,
  TICKET_HEADER_BYTES,
  TICKET_VERSION_1,
  ticketAad,
  ticketLimits,
  type TicketPayload,
} from './ticket-format.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, type AeadKey, type TicketAead } from './xchacha-aead.js';
import { defaultTicketAead } from './native-ticket-aead.js';

/** The keys a codec seals and opens with: the schedule and each key's derived AEAD key. */
export interface CodecKeys {
  readonly schedule: KeySchedule;
  /** The HKDF-derived engine key of a key in the schedule, derived once per key set. */
  aeadKey(nameHex: string): AeadKey | undefined;
}

/** What opening a ticket found. `payload` is set exactly when the status is SUCCESS or SUCCESS_RENEW. */
export interface OpenedTicket {
  readonly status: TicketStatus;
  readonly reason: TicketReason;
  /** The key name the ticket carries, when it was long enough to carry one. */
  readonly keyName?: Uint8Array;
  /** keyName in lower-case hex (computed once for the lookup; reused for metric labels). */
  readonly keyNameHex?: string;
  /** The key's state at the time of opening, when the key is in the set. */
  readonly keyState?: ScheduledKeyState;
  readonly payload?: TicketPayload;
}

export interface TicketCodecOptions {
  /** The ring the codec serves; bound into every ticket's AAD. */
  readonly ring: string;
  /** Default: the native port's one-call AEAD when it loads, else nodeTicketAead (both byte-identical to @noble/ciphers). */
  readonly aead?: TicketAead;
  /** Fills a buffer with random bytes. Default: node:crypto randomFillSync. Injected for tests. */
  readonly randomFill?: (buffer: Uint8Array) => void;
}

/**
 * Seals and opens engine-format v1 tickets for one ring (layout in
 * ticket-format.ts). `open` never throws: any input at all ends in a status and
 * a reason, and the checks run cheapest first (size, version, key name, then
 * authentication) so hostile input costs little.
 */
export interface TicketCodec {
  readonly ring: string;
  /** Seals under `key`; throws RangeError when a payload field is over its limit. */
  sealWith(key: ScheduledKey, aeadKey: AeadKey, payload: TicketPayload): Uint8Array;
  open(ticket: Uint8Array, keys: CodecKeys | undefined, nowMs: number): OpenedTicket;
}

const NONCE_POOL_NONCES = 256;

export function createTicketCodec(options: TicketCodecOptions): TicketCodec {
  const ringBytes = encodeRing(options.ring);
  const aead = options.aead ?? defaultTicketAead();
  const randomFill = options.randomFill ?? ((buffer: Uint8Array) => randomFillSync(buffer));
  // One random call per 256 tickets: the pool's bytes are used once each.
  const pool = new Uint8Array(AEAD_NONCE_BYTES * NONCE_POOL_NONCES);
  let poolOffset = pool.length;
  const nextNonce = (into: Uint8Array) => {
    if (poolOffset === pool.length) {
      randomFill(pool);
      poolOffset = 0;
    }
    // Each pool byte is handed out once; nonces are public, so used bytes need no wiping.
    into.set(pool.subarray(poolOffset, poolOffset + AEAD_NONCE_BYTES));
    poolOffset += AEAD_NONCE_BYTES;
  };

  // The AAD depends only on the ring and the key name: built once per key, not per ticket.
  const aadByName = new Map<string, Uint8Array>();
  const aadFor = (nameHex: string, keyName: Uint8Array) => {
    let aad = aadByName.get(nameHex);
    if (!aad) {
      // Bounded: names come from the key set (opening checks the set first), which rotation renews.
      if (aadByName.size >= 1024) aadByName.clear();
      aad = ticketAad(TICKET_VERSION_1, ringBytes, keyName);
      aadByName.set(nameHex, aad);
    }
    return aad;
  };

  const noDecrypt = (
    reason: TicketReason,
    keyName?: Uint8Array,
    keyNameHex?: string,
    keyState?: ScheduledKeyState,
  ): OpenedTicket => ({ status: TicketStatus.NO_DECRYPT, reason, keyName, keyNameHex, keyState });

  return {
    ring: options.ring,
    sealWith(key, aeadKey, payload) {
      const plaintext = encodePlaintext(payload);
      // The header is written in place; every byte of the ticket is set below.
      const ticket = Buffer.allocUnsafe(TICKET_HEADER_BYTES + plaintext.length + AEAD_TAG_BYTES);
      ticket[0] = TICKET_VERSION_1;
      ticket.set(key.name, 1);
      const nonce = ticket.subarray(1 + KEY_NAME_BYTES, TICKET_HEADER_BYTES);
      nextNonce(nonce);
      const sealed = aead.seal(aeadKey, nonce, aadFor(key.nameHex, key.name), plaintext);
      ticket.set(sealed, TICKET_HEADER_BYTES);
      return ticket;
    },
    open(ticket, keys, nowMs) {
      if (ticket.length === 0) return { status: TicketStatus.EMPTY, reason: TicketReason.EMPTY };
      if (ticket.length > ticketLimits.maxTicketBytes) return noDecrypt(TicketReason.TOO_LARGE);
      if (ticket[0] !== TICKET_VERSION_1 || ticket.length < MIN_TICKET_BYTES) {
        return noDecrypt(TicketReason.MALFORMED);
      }
      // Copied (also from a Buffer, whose slice is a view) so the result never aliases the caller's buffer.
      const keyName = new Uint8Array(ticket.subarray(1, 1 + KEY_NAME_BYTES));
      const nameHex = keyNameHex(keyName);
      const lookup = lookupTicketKey(keys?.schedule, nameHex, nowMs);
      if ('refused' in lookup) return noDecrypt(lookup.refused.reason, keyName, nameHex, lookup.state);
      const keyState = lookup.state;
      const aeadKey = keys?.aeadKey(nameHex);
      if (!aeadKey) return noDecrypt(TicketReason.UNKNOWN_KEY, keyName, nameHex, keyState);
      const nonce = ticket.subarray(1 + KEY_NAME_BYTES, TICKET_HEADER_BYTES);
      const plaintext = aead.open(
        aeadKey,
        nonce,
        aadFor(nameHex, keyName),
        ticket.subarray(TICKET_HEADER_BYTES),
      );
      if (!plaintext) return noDecrypt(TicketReason.AUTH_FAILED, keyName, nameHex, keyState);
      const payload = decodePlaintext(plaintext);
      if (!payload) return noDecrypt(TicketReason.MALFORMED, keyName, nameHex, keyState);
      const { status, reason } = openedTicketStatus(keyState);
      return { status, reason, keyName, keyNameHex: nameHex, keyState, payload };
    },
  };
}
