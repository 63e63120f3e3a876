/**
 * The engine's appdata inside a Node server's session ticket (OpenSSL's
 * SSL_SESSION_set1_ticket_appdata). OpenSSL seals it inside the ticket under
 * the ring's key, so only a node of the ring can have written it; the parser
 * is strict all the same, since two nodes must never read it differently.
 *
 *   version(1) = 0x01 | issuedAtMs(8) | epoch(8) | server name length(1)
 *   | server name | node id length(1) | node id | client fingerprint length(1)
 *   (0 or 32) | client fingerprint | user appdata length(2) | user appdata
 *
 * Integers are big-endian. `issuedAtMs` is the session's first issue time and
 * is kept across renewals (so max_session_age counts from the first full
 * handshake); `epoch` and the node id say which key set and which node issued it.
 */
export const TICKET_APPDATA_VERSION_1 = 0x01;
/** OpenSSL carries any size; the engine's own ticket format allows this much. */
export const MAX_TICKET_APPDATA_BYTES = 4096;
const FIXED_BYTES = 1 + 8 + 8 + 1 + 1 + 1 + 2;
const MAX_USER_APPDATA_BYTES = MAX_TICKET_APPDATA_BYTES - FIXED_BYTES - 255 - 255 - 32;
const FINGERPRINT_BYTES = 32;

export interface TicketAppdata {
  readonly issuedAtMs: number;
  readonly epoch: number;
  /** Lower-case SNI the session was issued on; '' without one. */
  readonly serverName: string;
  readonly nodeId: string;
  /** SHA-256 of the client certificate, when the session had one. */
  readonly clientFingerprint: Uint8Array | undefined;
  readonly userAppdata: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Throws RangeError for a field over its limit (a caller bug, never client input). */
export function encodeTicketAppdata(appdata: TicketAppdata): Buffer {
  const serverName = encoder.encode(appdata.serverName);
  const nodeId = encoder.encode(appdata.nodeId);
  const fingerprint = appdata.clientFingerprint ?? new Uint8Array(0);
  if (!Number.isSafeInteger(appdata.issuedAtMs) || appdata.issuedAtMs < 0) {
    throw new RangeError(`issuedAtMs must be a non-negative integer, got ${appdata.issuedAtMs}`);
  }
  if (!Number.isSafeInteger(appdata.epoch) || appdata.epoch < 0) {
    throw new RangeError(`epoch must be a non-negative integer, got ${appdata.epoch}`);
  }
  if (serverName.length > 255) throw new RangeError(`server name is ${serverName.length} bytes, at most 255`);
  if (nodeId.length > 255) throw new RangeError(`node id is ${nodeId.length} bytes, at most 255`);
  if (fingerprint.length !== 0 && fingerprint.length !== FINGERPRINT_BYTES) {
    throw new RangeError(`client fingerprint is ${fingerprint.length} bytes, expected 0 or 32`);
  }
  if (appdata.userAppdata.length > MAX_USER_APPDATA_BYTES) {
    throw new RangeError(
      `user appdata is ${appdata.userAppdata.length} bytes, at most ${MAX_USER_APPDATA_BYTES}`,
    );
  }
  const out = Buffer.alloc(
    FIXED_BYTES + serverName.length + nodeId.length + fingerprint.length + appdata.userAppdata.length,
  );
  let at = 0;
  out[at++] = TICKET_APPDATA_VERSION_1;
  out.writeBigUInt64BE(BigInt(appdata.issuedAtMs), at);
  at += 8;
  out.writeBigUInt64BE(BigInt(appdata.epoch), at);
  at += 8;
  for (const field of [serverName, nodeId, fingerprint]) {
    out[at++] = field.length;
    out.set(field, at);
    at += field.length;
  }
  out.writeUInt16BE(appdata.userAppdata.length, at);
  out.set(appdata.userAppdata, at + 2);
  return out;
}

/** The appdata, or undefined for anything that is not exactly one well-formed v1 record. Never throws. */
export function decodeTicketAppdata(bytes: Uint8Array | undefined): TicketAppdata | undefined {
  if (!bytes || bytes.length < FIXED_BYTES || bytes.length > MAX_TICKET_APPDATA_BYTES) return undefined;
  if (bytes[0] !== TICKET_APPDATA_VERSION_1) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const issuedAt = view.getBigUint64(1);
  const epoch = view.getBigUint64(9);
  if (issuedAt > BigInt(Number.MAX_SAFE_INTEGER) || epoch > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  let at = 17;
  const field = (): Uint8Array | undefined => {
    if (at >= bytes.length) return undefined;
    const length = bytes[at]!;
    if (at + 1 + length > bytes.length) return undefined;
    const value = bytes.subarray(at + 1, at + 1 + length);
    at += 1 + length;
    return value;
  };
  const serverName = field();
  const nodeId = field();
  const fingerprint = field();
  if (!serverName || !nodeId || !fingerprint) return undefined;
  if (fingerprint.length !== 0 && fingerprint.length !== FINGERPRINT_BYTES) return undefined;
  if (at + 2 > bytes.length) return undefined;
  const userLength = view.getUint16(at);
  if (at + 2 + userLength !== bytes.length) return undefined;
  try {
    return {
      issuedAtMs: Number(issuedAt),
      epoch: Number(epoch),
      serverName: decoder.decode(serverName),
      nodeId: decoder.decode(nodeId),
      clientFingerprint: fingerprint.length === 0 ? undefined : new Uint8Array(fingerprint),
      userAppdata: new Uint8Array(bytes.subarray(at + 2)),
    };
  } catch {
    return undefined; // not UTF-8
  }
}
