import { node128Keys } from '../keys/key-material.js';
import type { KeySchedule, ScheduledKey } from '../keys/key-schedule.js';
import { keyNameHex, keyNameLabel } from '../keys/ticket-key.js';

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

/** Decision and reason names as metric labels: the proto enums without their prefixes. */
export type HookDecision = 'USE' | 'USE_RENEW' | 'IGNORE_RENEW';
export type HookReason = 'OK' | 'KEY_RETIRED' | 'UNKNOWN_KEY' | 'KEY_EXPIRED' | 'KEY_REVOKED';

export interface OpenAnswer {
  readonly result: TicketKeyResult;
  readonly hmacKey: Uint8Array;
  readonly aesKey: Uint8Array;
  readonly decision: HookDecision;
  readonly reason: HookReason;
  /** Metric label of the key: its short name when the set knows it, else "unknown". */
  readonly keyLabel: string;
}

export interface SealAnswer {
  readonly result: TicketKeyResult;
  readonly name: Uint8Array;
  readonly hmacKey: Uint8Array;
  readonly aesKey: Uint8Array;
  /** Label of the sealing key, "none" when no key encrypts. */
  readonly keyLabel: string;
}

const zero16 = new Uint8Array(16);

/**
 * Answers Node's per-ticket hook from the key schedule (DESIGN.md §3): seal
 * under the ACTIVE key; open by name with use (PENDING, ACTIVE), use-and-renew
 * (DECRYPT_ONLY) or not-found (gone, revoked, unknown). Pure apart from a
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
        keyLabel: 'none',
      };
    }
    return {
      result: TicketKeyResult.USE,
      name: active.name,
      ...this.keysOf(active),
      keyLabel: keyNameLabel(active.name),
    };
  }

  /** Whether and how to open a ticket whose key name is `name`. */
  open(schedule: KeySchedule | undefined, name: Uint8Array, nowMs: number): OpenAnswer {
    const nameHex = keyNameHex(name);
    const notFound = (reason: HookReason, keyLabel: string): OpenAnswer => ({
      result: TicketKeyResult.NOT_FOUND,
      hmacKey: zero16,
      aesKey: zero16,
      decision: 'IGNORE_RENEW',
      reason,
      keyLabel,
    });
    if (!schedule) return notFound('UNKNOWN_KEY', 'unknown');
    if (schedule.isRevoked(nameHex)) return notFound('KEY_REVOKED', keyNameLabel(name));
    const key = schedule.find(nameHex);
    if (!key || key.secret.length === 0) return notFound('UNKNOWN_KEY', 'unknown');
    const state = schedule.stateOf(key, nowMs);
    const label = keyNameLabel(name);
    switch (state) {
      case 'gone':
        return notFound('KEY_EXPIRED', label);
      case 'decrypt-only':
        return {
          result: TicketKeyResult.USE_RENEW,
          ...this.keysOf(key),
          decision: 'USE_RENEW',
          reason: 'KEY_RETIRED',
          keyLabel: label,
        };
      default:
        return {
          result: TicketKeyResult.USE,
          ...this.keysOf(key),
          decision: 'USE',
          reason: 'OK',
          keyLabel: label,
        };
    }
  }
}
