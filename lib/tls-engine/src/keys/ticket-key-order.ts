import type { KeySet } from '@keyfleet/proto';
import { KEY_SECRET_BYTES, keyNameHex } from './ticket-key.js';
import { keyScheduleOfKeySet } from './key-schedule-of-key-set.js';
import type { ScheduledKey } from './key-schedule.js';

/**
 * A ring's live keys at one moment, sorted the way terminators that take a
 * plain list of keys need them (nginx's files, HAProxy's ring, Envoy's SDS
 * secret): the key that encrypts, the keys about to
 * encrypt, and the keys that only still open tickets.
 */
export interface TicketKeyOrder {
  /**
   * The key that encrypts: the ACTIVE key, or, when this clock runs behind the
   * publisher's and nothing has activated yet, the soonest PENDING key (every
   * node opens PENDING keys, so sealing with it early is safe).
   */
  readonly encrypting: ScheduledKey | undefined;
  /** PENDING keys other than `encrypting`, soonest activation first. */
  readonly pending: readonly ScheduledKey[];
  /** DECRYPT_ONLY keys, most recently retired first (the likeliest to be presented). */
  readonly decryptOnly: readonly ScheduledKey[];
}

/**
 * Orders a proto KeySet's keys at `nowMs` with lib/tls-engine's KeySchedule,
 * so a synced nginx, HAProxy or Envoy agrees with every engine node on which key
 * encrypts and which still open. Throws when the set was fetched without
 * secrets: a terminator cannot be fed names alone.
 */
export function ticketKeyOrderAt(keySet: KeySet, nowMs: number): TicketKeyOrder {
  for (const key of keySet.keys) {
    if (key.secret.length !== KEY_SECRET_BYTES) {
      throw new Error(
        `key ${keyNameHex(key.name).slice(0, 16)} of ring ${keySet.ring} has no secret: a terminator needs a key set with secrets`,
      );
    }
  }
  const schedule = keyScheduleOfKeySet(keySet);
  const active = schedule.activeAt(nowMs);
  const pending = schedule.keys.filter((key) => schedule.stateOf(key, nowMs) === 'pending');
  const decryptOnly = schedule.keys
    .filter((key) => schedule.stateOf(key, nowMs) === 'decrypt-only')
    .reverse();
  if (active) return { encrypting: active, pending, decryptOnly };
  const [soonest, ...later] = pending;
  return { encrypting: soonest, pending: later, decryptOnly };
}

/**
 * The earliest moment after `nowMs` at which the order can change (a key
 * activates or expires), so a sync rewrites its files then even when the
 * service sends nothing new. Undefined when nothing is scheduled.
 */
export function nextTransitionMs(keySet: KeySet, nowMs: number): number | undefined {
  const schedule = keyScheduleOfKeySet(keySet);
  let next = Infinity;
  for (const key of schedule.keys) {
    for (const at of [key.activatesAtMs, key.expiresAtMs]) if (at > nowMs && at < next) next = at;
  }
  return Number.isFinite(next) ? next : undefined;
}
