import { node128Keys } from '../keys/key-material.js';
import type { KeySchedule, ScheduledKey } from '../keys/key-schedule.js';
import { TicketStatus, type TicketDecision, type TicketReason } from '@keyfleet/proto';
import { defaultTicketDecision, lookupTicketKey, openedTicketStatus } from '../keys/ticket-decision-table.js';
import { keyNameHex } from '../keys/ticket-key.js';

/** OpenSSL's ticket key callback results, as Node's hook passes them through. */
export const TicketKeyResult = {
  /** Decrypt: key not found, full handshake and a new ticket. Encrypt: issue no ticket. */
  NOT_FOUND: 0,
  /** Decrypt: resume. Encrypt: sealed. */
  USE: 1,
  /** Decrypt: resume and replace the ticket with one under the ACTIVE key. */
  USE_RENEW: 2,
} as const;
export type TicketKeyResult = (typeof TicketKeyResult)[keyof typeof TicketKeyResult];

export interface OpenAnswer {
  readonly result: TicketKeyResult;
  readonly hmacKey: Uint8Array;
  readonly aesKey: Uint8Array;
  /** USE, USE_RENEW or IGNORE_RENEW: what the result means in the contract's terms. */
  readonly decision: TicketDecision;
  readonly reason: TicketReason;
  /** The key's name when the set knows it (revoked included); undefined for names never seen. */
  readonly keyName: Uint8Array | undefined;
  /**
   * The answer holds for every `nowMs` in [validFromMs, validUntilMs) with the
   * same schedule (a key's state changes only at its activation, retirement
   * and expiry), so a caller may reuse it within that window.
   */
  readonly validFromMs: number;
  readonly validUntilMs: number;
}

export interface SealAnswer {
  readonly result: TicketKeyResult;
  readonly name: Uint8Array;
  readonly hmacKey: Uint8Array;
  readonly aesKey: Uint8Array;
}

const zero16 = new Uint8Array(16);

/**
 * Answers Node's per-ticket hook from the key schedule: seal under the ACTIVE
 * key; open by name through the shared decision table (use for PENDING and
 * ACTIVE, use-and-renew for DECRYPT_ONLY, not-found for gone, revoked, unknown). Pure apart from a
 * cache of derived keys, so the handshake path does no HKDF after the first
 * ticket under a key.
 */
export class TicketKeyResponder {
  private readonly derived = new WeakMap<ScheduledKey, { hmacKey: Uint8Array; aesKey: Uint8Array }>();

  private keysOf(key: ScheduledKey): { hmacKey: Uint8Array; aesKey: Uint8Array } {
    let keys = this.derived.get(key);
    if (!keys) {
      keys = node128Keys(key.secret);
      this.derived.set(key, keys);
    }
    return keys;
  }

  /** What to seal a new ticket under at `nowMs`; NOT_FOUND (no ticket) while no key encrypts. */
  seal(schedule: KeySchedule | undefined, nowMs: number): SealAnswer {
    const active = schedule?.activeAt(nowMs);
    if (!active || active.secret.length === 0) {
      return {
        result: TicketKeyResult.NOT_FOUND,
        name: zero16,
        hmacKey: zero16,
        aesKey: zero16,
      };
    }
    return {
      result: TicketKeyResult.USE,
      name: active.name,
      ...this.keysOf(active),
    };
  }

  /**
   * Whether and how to open a ticket whose key name is `name`, by the shared
   * table: the status a ticket under that key gets, as Node's hook result.
   */
  open(schedule: KeySchedule | undefined, name: Uint8Array, nowMs: number): OpenAnswer {
    const lookup = lookupTicketKey(schedule, keyNameHex(name), nowMs);
    if ('refused' in lookup) {
      const { decision, reason } = defaultTicketDecision(lookup.refused.status, lookup.refused.reason);
      return {
        result: TicketKeyResult.NOT_FOUND,
        hmacKey: zero16,
        aesKey: zero16,
        decision,
        reason,
        // Revoked names are labelled like held ones: the set knows them.
        keyName: lookup.key?.name ?? (schedule?.isRevoked(keyNameHex(name)) ? name : undefined),
        validFromMs: lookup.key ? lookup.key.expiresAtMs : -Infinity,
        validUntilMs: Infinity,
      };
    }
    const { key, state } = lookup;
    const opened = openedTicketStatus(state);
    const { decision, reason } = defaultTicketDecision(opened.status, opened.reason);
    return {
      result: opened.status === TicketStatus.SUCCESS_RENEW ? TicketKeyResult.USE_RENEW : TicketKeyResult.USE,
      ...this.keysOf(key),
      decision,
      reason,
      keyName: key.name,
      // A key's state changes only at its activation, retirement and expiry.
      validFromMs: state === 'pending' ? -Infinity : state === 'active' ? key.activatesAtMs : key.retiresAtMs,
      validUntilMs: state === 'decrypt-only' ? key.expiresAtMs : key.retiresAtMs,
    };
  }
}
