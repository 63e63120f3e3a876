import { KEY_NAME_BYTES } from '../keys/ticket-key.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES } from './xchacha-aead.js';

/**
 * Engine ticket format v1 (docs/architecture.md, "Tickets"), on the wire:
 *
 *   version(1) = 0x01 | key name(16) | nonce(24) | ciphertext | tag(16)
 *
 * AAD = version(1) | ring length(2, big-endian) | ring (UTF-8) | key name(16),
 * so a ticket cut from one ring, version or key cannot be pasted into another.
 *
 * The plaintext starts with a fixed 15-byte header, all integers big-endian:
 *
 *   issuedAtMs(8) | flags(1) | session length(2) | appdata length(2)
 *   | server name length(1) | client identity length(1)
 *
 * followed by session | appdata | server name | client identity. Flag bit 0:
 * the server name is bound; bit 1: the client identity is bound. Every other
 * flag bit must be zero, and the lengths must add up exactly: anything else is
 * MALFORMED even when it authenticates (it could only come from a buggy
 * writer, and guessing would make nodes disagree).
 */
export const TICKET_VERSION_1 = 0x01;

/** The documented limits (also in README "Tickets and decisions"). */
export const ticketLimits = {
  /** The serialized TLS session. */
  maxSessionBytes: 8192,
  /** Application data carried in the ticket. */
  maxAppdataBytes: 4096,
  /** A whole ticket as a client presents it; larger input is TOO_LARGE before any work. */
  maxTicketBytes: 16384,
  /** A bound server name (DNS names are at most 253). */
  maxServerNameBytes: 255,
  /** A bound client identity (a SHA-256 hex fingerprint is 64). */
  maxClientIdentityBytes: 255,
} as const;

export const TICKET_HEADER_BYTES = 1 + KEY_NAME_BYTES + AEAD_NONCE_BYTES;
export const PLAINTEXT_HEADER_BYTES = 8 + 1 + 2 + 2 + 1 + 1;
/** The smallest well-formed ticket: header, an empty-bodied plaintext header, tag. */
export const MIN_TICKET_BYTES = TICKET_HEADER_BYTES + PLAINTEXT_HEADER_BYTES + AEAD_TAG_BYTES;

const FLAG_SERVER_NAME = 0x01;
const FLAG_CLIENT_IDENTITY = 0x02;
const KNOWN_FLAGS = FLAG_SERVER_NAME | FLAG_CLIENT_IDENTITY;

/** What a ticket carries besides the session: the issue time and the context it was bound to. */
export interface TicketPayload {
  /** When the session was first issued; kept across renewals. */
  readonly issuedAtMs: number;
  readonly session: Uint8Array;
  readonly appdata: Uint8Array;
  /** Set when the ring binds tickets to the server name they were issued on. */
  readonly serverName?: string | undefined;
  /** Set when the connection had a client identity, so a revoked client cannot resume. */
  readonly clientIdentity?: string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Throws RangeError (a caller bug, never client input) when a field is over its limit. */
export function encodePlaintext(payload: TicketPayload): Uint8Array {
  const { session, appdata, issuedAtMs } = payload;
  if (session.length > ticketLimits.maxSessionBytes) {
    throw new RangeError(`session is ${session.length} bytes, at most ${ticketLimits.maxSessionBytes}`);
  }
  if (appdata.length > ticketLimits.maxAppdataBytes) {
    throw new RangeError(`appdata is ${appdata.length} bytes, at most ${ticketLimits.maxAppdataBytes}`);
  }
  if (!Number.isSafeInteger(issuedAtMs) || issuedAtMs < 0) {
    throw new RangeError(`issuedAtMs must be a non-negative integer, got ${issuedAtMs}`);
  }
  const serverName = payload.serverName === undefined ? undefined : encoder.encode(payload.serverName);
  const identity = payload.clientIdentity === undefined ? undefined : encoder.encode(payload.clientIdentity);
  if (serverName && serverName.length > ticketLimits.maxServerNameBytes) {
    throw new RangeError(`server name is over ${ticketLimits.maxServerNameBytes} bytes`);
  }
  if (identity && identity.length > ticketLimits.maxClientIdentityBytes) {
    throw new RangeError(`client identity is over ${ticketLimits.maxClientIdentityBytes} bytes`);
  }
  const serverNameLength = serverName?.length ?? 0;
  const identityLength = identity?.length ?? 0;
  const out = Buffer.allocUnsafe(
    PLAINTEXT_HEADER_BYTES + session.length + appdata.length + serverNameLength + identityLength,
  );
  out.writeUInt32BE(Math.floor(issuedAtMs / 0x1_0000_0000), 0);
  out.writeUInt32BE(issuedAtMs % 0x1_0000_0000, 4);
  out[8] = (serverName ? FLAG_SERVER_NAME : 0) | (identity ? FLAG_CLIENT_IDENTITY : 0);
  out.writeUInt16BE(session.length, 9);
  out.writeUInt16BE(appdata.length, 11);
  out[13] = serverNameLength;
  out[14] = identityLength;
  let at = PLAINTEXT_HEADER_BYTES;
  out.set(session, at);
  at += session.length;
  out.set(appdata, at);
  at += appdata.length;
  if (serverName) out.set(serverName, at);
  at += serverNameLength;
  if (identity) out.set(identity, at);
  return out;
}

/** The payload, or undefined when the plaintext is not exactly a v1 payload. Never throws. */
export function decodePlaintext(plaintext: Uint8Array): TicketPayload | undefined {
  if (plaintext.length < PLAINTEXT_HEADER_BYTES) return undefined;
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  // Two 32-bit halves: cheaper than a BigInt, and a high half over 2^21 is beyond MAX_SAFE_INTEGER.
  const issuedAtHigh = view.getUint32(0);
  const issuedAtLow = view.getUint32(4);
  const flags = view.getUint8(8);
  const sessionLength = view.getUint16(9);
  const appdataLength = view.getUint16(11);
  const serverNameLength = view.getUint8(13);
  const identityLength = view.getUint8(14);
  if ((flags & ~KNOWN_FLAGS) !== 0 || issuedAtHigh > 0x1fffff) return undefined;
  if (sessionLength > ticketLimits.maxSessionBytes || appdataLength > ticketLimits.maxAppdataBytes) {
    return undefined;
  }
  // A length without its flag (or the reverse for an empty value is fine: an empty bound name).
  if (!(flags & FLAG_SERVER_NAME) && serverNameLength !== 0) return undefined;
  if (!(flags & FLAG_CLIENT_IDENTITY) && identityLength !== 0) return undefined;
  const total = PLAINTEXT_HEADER_BYTES + sessionLength + appdataLength + serverNameLength + identityLength;
  if (total !== plaintext.length) return undefined;
  const sessionEnd = PLAINTEXT_HEADER_BYTES + sessionLength;
  const appdataEnd = sessionEnd + appdataLength;
  const serverNameEnd = appdataEnd + serverNameLength;
  const session = plaintext.subarray(PLAINTEXT_HEADER_BYTES, sessionEnd);
  const appdata = plaintext.subarray(sessionEnd, appdataEnd);
  try {
    return {
      issuedAtMs: issuedAtHigh * 0x1_0000_0000 + issuedAtLow,
      session,
      appdata,
      serverName:
        flags & FLAG_SERVER_NAME ? decoder.decode(plaintext.subarray(appdataEnd, serverNameEnd)) : undefined,
      clientIdentity:
        flags & FLAG_CLIENT_IDENTITY ? decoder.decode(plaintext.subarray(serverNameEnd, total)) : undefined,
    };
  } catch {
    return undefined; // not UTF-8
  }
}

/** AAD = version | ring length (uint16 BE) | ring | key name. */
export function ticketAad(version: number, ringBytes: Uint8Array, keyName: Uint8Array): Uint8Array {
  const aad = Buffer.allocUnsafe(1 + 2 + ringBytes.length + keyName.length);
  aad[0] = version;
  aad.writeUInt16BE(ringBytes.length, 1);
  aad.set(ringBytes, 3);
  aad.set(keyName, 3 + ringBytes.length);
  return aad;
}

export function encodeRing(ring: string): Uint8Array {
  const bytes = encoder.encode(ring);
  if (bytes.length === 0 || bytes.length > 0xffff) throw new RangeError('ring name must be 1 to 65535 bytes');
  return bytes;
}
