import { haproxyTicketKey, keyNameHex } from '@keyfleet/tls-engine';
import type { FillerKey } from './filler-keys.js';
import type { TicketKeyOrder } from '@keyfleet/tls-engine';

/**
 * HAProxy keeps TLS_TICKETS_NO (3, fixed at compile time) keys per
 * `tls-ticket-keys` file in a ring: reading the file, line i lands in slot
 * i mod 3, and the PENULTIMATE line encrypts; `set ssl tls-key` overwrites the
 * oldest slot with a new ULTIMATE key and moves encryption to the previous
 * ultimate one. So the file holds exactly three lines.
 */
export const HAPROXY_TICKET_KEY_COUNT = 3;

/** The `tls-ticket-keys` file as HAProxy lists it: oldest, encrypting, next. */
export interface HaproxyTicketKeyLayout {
  /** Three base64 lines of 80 bytes (name | AES 32 | HMAC 32). */
  readonly lines: readonly string[];
  readonly lineKeyNames: readonly (string | undefined)[];
  /** Hex names of live keys HAProxy's three slots cannot hold. */
  readonly droppedKeyNames: readonly string[];
}

/**
 * Maps a ring onto HAProxy's three slots: [the most recently retired
 * DECRYPT_ONLY key, the encrypting key, the soonest PENDING key], with random
 * fillers where the ring has none. Older DECRYPT_ONLY keys do not fit: tickets
 * under them get a full handshake on HAProxy (a limit of HAProxy, reported in
 * `droppedKeyNames`). Putting the PENDING key last is what keeps HAProxy
 * consistent through a rotation: it already opens tickets that faster nodes
 * seal with it, and one `set ssl tls-key` later it is the encrypting key.
 */
export function haproxyTicketKeyLines(
  order: TicketKeyOrder,
  filler: (slot: number) => FillerKey,
): HaproxyTicketKeyLayout {
  if (!order.encrypting)
    throw new Error('the ring has no key to encrypt with: refusing to write HAProxy keys');
  const [previous, ...olderRetired] = order.decryptOnly;
  const [next, ...laterPending] = order.pending;
  const slots = [previous, order.encrypting, next];
  const lines = slots.map((key, slot) => {
    const material = key ?? filler(slot);
    return haproxyTicketKey(material.name, material.secret).toString('base64');
  });
  return {
    lines,
    lineKeyNames: slots.map((key) => key?.nameHex),
    droppedKeyNames: [...laterPending, ...olderRetired].map((key) => keyNameHex(key.name)),
  };
}

/** The file text: one base64 line per key, newline-terminated. */
export function haproxyTicketKeyFileText(layout: HaproxyTicketKeyLayout): string {
  return layout.lines.map((line) => `${line}\n`).join('');
}

/**
 * The `set ssl tls-key` pushes that turn HAProxy's current ring (as `show
 * tls-keys` lists it, oldest first) into `desired`. Each push drops the oldest
 * key and appends one, so the shortest sequence is: find the smallest k such
 * that the current ring's last 3-k keys are the desired first 3-k, then push
 * the desired last k. A normal rotation is one push; anything else (a revoked
 * key, a restart with another filler) at most three. Between those pushes
 * HAProxy briefly seals with the previous ultimate key (after a sidecar
 * restart, a filler of the old process): tickets from those milliseconds get
 * a full handshake on other nodes, never a wrong resumption. An old filler is
 * never kept instead, because nothing tells it apart from an expired key that
 * must stop opening tickets.
 */
export function haproxyTicketKeyPushes(current: readonly string[], desired: readonly string[]): string[] {
  if (desired.length !== HAPROXY_TICKET_KEY_COUNT) {
    throw new RangeError(`HAProxy holds ${HAPROXY_TICKET_KEY_COUNT} ticket keys, got ${desired.length}`);
  }
  for (let k = 0; k < HAPROXY_TICKET_KEY_COUNT; k++) {
    const kept = current.slice(k);
    if (kept.length !== HAPROXY_TICKET_KEY_COUNT - k) continue;
    if (kept.every((line, index) => line === desired[index]))
      return desired.slice(HAPROXY_TICKET_KEY_COUNT - k);
  }
  return [...desired];
}
