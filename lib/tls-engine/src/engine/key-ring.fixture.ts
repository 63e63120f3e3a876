// Test fixture: a ring of keys published an hour apart, each ACTIVE a minute
// after publication, with a 12 h decrypt window (the service's defaults, scaled).
import { createTicketKeyRing, type TicketKeyRing, type TicketKeyRingInput } from './ticket-key-ring.js';
import type { TicketKeyRecord } from '../keys/ticket-key.js';

export const minuteMs = 60_000;
export const hourMs = 60 * minuteMs;
export const decryptWindowMs = 12 * hourMs;

export function fixtureKey(id: number, publishedAtMs: number, activatesAtMs: number): TicketKeyRecord {
  return {
    name: new Uint8Array(16).fill(id),
    secret: Uint8Array.from({ length: 32 }, (_, i) => (id * 31 + i) & 0xff),
    publishedAtMs,
    activatesAtMs,
  };
}

/** Key 1 ACTIVE from 0, key 2 published at 1 h (ACTIVE at 1 h + 1 min), key 3 at 2 h. */
export function fixtureRing(overrides: Partial<TicketKeyRingInput> = {}): TicketKeyRing {
  return createTicketKeyRing({
    ring: 'edge',
    epoch: 3,
    keys: [
      fixtureKey(1, 0, 0),
      fixtureKey(2, hourMs, hourMs + minuteMs),
      fixtureKey(3, 2 * hourMs, 2 * hourMs + minuteMs),
    ],
    decryptWindowMs,
    ...overrides,
  });
}
