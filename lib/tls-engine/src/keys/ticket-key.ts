/**
 * A ticket key as the engine sees it: the proto's TicketKey without the
 * display-only fields. Names are public (every ticket carries one in clear);
 * secrets never leave memory except over the contract's gRPC streams.
 */
export interface TicketKeyRecord {
  /** 16 random bytes. */
  readonly name: Uint8Array;
  /** 32 random bytes; empty when the set was fetched without secrets. */
  readonly secret: Uint8Array;
  readonly publishedAtMs: number;
  readonly activatesAtMs: number;
}

export const KEY_NAME_BYTES = 16;
export const KEY_SECRET_BYTES = 32;

/** Lower-case hex of a key name: how names appear in logs, metrics labels and maps. */
export function keyNameHex(name: Uint8Array): string {
  return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('hex');
}

/** A short form for metric labels and log lines (first 8 bytes, 16 hex digits). */
export function keyNameLabel(name: Uint8Array): string {
  return keyNameHex(name).slice(0, 16);
}
