import { keyNameHex, nginxTicketKeyFile } from '@keyfleet/tls-engine';
import type { FillerKey } from './filler-keys.js';
import type { TicketKeyOrder } from '@keyfleet/tls-engine';

/** What goes into nginx's fixed `ssl_session_ticket_key` slots. */
export interface NginxTicketKeyLayout {
  /** One 80-byte file per slot, slot 0 first (name | HMAC 32 | AES 32). */
  readonly files: readonly Buffer[];
  /** Hex name of the ring key in each slot, or undefined for a filler. */
  readonly slotKeyNames: readonly (string | undefined)[];
  /** Hex names of DECRYPT_ONLY keys that did not fit (the oldest go first). */
  readonly droppedKeyNames: readonly string[];
}

/** The file name of slot `index`: what nginx.conf names. */
export function nginxTicketKeyFileName(index: number): string {
  return `key-${index}.key`;
}

/**
 * Lays a ring's keys into nginx's slots. nginx seals with the FIRST
 * `ssl_session_ticket_key` and opens with any, so slot 0 holds the encrypting
 * key, then PENDING keys (a node whose clock runs ahead may already seal with
 * them), then DECRYPT_ONLY keys newest first. nginx.conf must name a fixed
 * list of files and reads them only at (re)load, so the count is fixed at
 * `slotCount`; spare slots get a random filler that nothing encrypts with.
 * Size it to ceil(decryptWindowMs / rotationIntervalMs) + 2 to keep every key
 * that still opens tickets; when the ring holds more, the oldest DECRYPT_ONLY
 * keys are left out and reported.
 */
export function nginxTicketKeySlots(
  order: TicketKeyOrder,
  slotCount: number,
  filler: (slot: number) => FillerKey,
): NginxTicketKeyLayout {
  if (!Number.isInteger(slotCount) || slotCount < 1)
    throw new RangeError('nginx needs at least one key slot');
  if (!order.encrypting)
    throw new Error('the ring has no key to encrypt with: refusing to write nginx key files');
  const ranked = [order.encrypting, ...order.pending, ...order.decryptOnly];
  const kept = ranked.slice(0, slotCount);
  const files: Buffer[] = [];
  const slotKeyNames: (string | undefined)[] = [];
  for (let slot = 0; slot < slotCount; slot++) {
    const key = kept[slot];
    if (key) {
      files.push(nginxTicketKeyFile(key.name, key.secret));
      slotKeyNames.push(key.nameHex);
    } else {
      const spare = filler(slot);
      files.push(nginxTicketKeyFile(spare.name, spare.secret));
      slotKeyNames.push(undefined);
    }
  }
  return {
    files,
    slotKeyNames,
    droppedKeyNames: ranked.slice(slotCount).map((key) => keyNameHex(key.name)),
  };
}
