import { keyNameHex, type TicketKeyRecord } from './ticket-key.js';

/**
 * The key schedule (docs/architecture.md, "The key schedule") as a pure function of a key set and a time,
 * so every node that holds the same set reaches the same answer.
 *
 *   PENDING       publishedAt ≤ t < activatesAt     opens: SUCCESS
 *   ACTIVE        newest key with activatesAt ≤ t   opens: SUCCESS, encrypts
 *   DECRYPT_ONLY  a newer key is ACTIVE, t < expiresAt   opens: SUCCESS_RENEW
 *   gone          t ≥ expiresAt, revoked, or unknown    NO_DECRYPT
 *
 * retiresAt is the next key's activatesAt and expiresAt is retiresAt +
 * decryptWindowMs; both are derived here rather than trusted from storage, so
 * an early promotion or a stalled rotation can never leave them inconsistent.
 * A stalled rotation keeps the newest activated key ACTIVE: once a key has
 * activated there is always exactly one ACTIVE key — unless the schedule ends
 * issuing (`issuingEndsAtMs`, set for a node cut off from the service for too
 * long): from then on no key is ACTIVE, and every key that could encrypt
 * before retires then, so tickets already issued still open for one decrypt
 * window and then stop.
 */
export type ScheduledKeyState = 'pending' | 'active' | 'decrypt-only' | 'gone';

export interface ScheduledKey extends TicketKeyRecord {
  readonly nameHex: string;
  /** The next key's activatesAt (or the end of issuing, if sooner); Infinity while neither exists. */
  readonly retiresAtMs: number;
  /** retiresAtMs + decryptWindowMs; Infinity while the key has not retired. */
  readonly expiresAtMs: number;
}

export class KeySchedule {
  /** Keys ordered by activatesAt ascending, with derived retire and expiry times. */
  readonly keys: readonly ScheduledKey[];
  private readonly byName: ReadonlyMap<string, ScheduledKey>;

  constructor(
    keys: readonly TicketKeyRecord[],
    readonly decryptWindowMs: number,
    /** Names of revoked keys: gone whatever their times say. */
    readonly revokedNames: ReadonlySet<string> = new Set(),
    /** From this time no key encrypts (a partitioned node); Infinity: issuing never ends. */
    readonly issuingEndsAtMs = Infinity,
  ) {
    const live = keys
      .filter((key) => !revokedNames.has(keyNameHex(key.name)))
      .sort((a, b) => a.activatesAtMs - b.activatesAtMs || a.publishedAtMs - b.publishedAtMs);
    this.keys = live.map((key, index) => {
      const next = live[index + 1];
      // A key due to activate after issuing ended never encrypts: it retires at its activation.
      const retiresAtMs = Math.max(
        key.activatesAtMs,
        Math.min(next ? next.activatesAtMs : Infinity, issuingEndsAtMs),
      );
      return {
        ...key,
        nameHex: keyNameHex(key.name),
        retiresAtMs,
        expiresAtMs: retiresAtMs + decryptWindowMs,
      };
    });
    this.byName = new Map(this.keys.map((key) => [key.nameHex, key]));
  }

  /** The same keys with issuing ended at `endsAtMs` (no-op when this schedule already ends sooner). */
  withIssuingEndedAt(endsAtMs: number): KeySchedule {
    if (endsAtMs >= this.issuingEndsAtMs) return this;
    return new KeySchedule(this.keys, this.decryptWindowMs, this.revokedNames, endsAtMs);
  }

  /** The key by lower-case hex name, if the set has it (in any state). */
  find(nameHex: string): ScheduledKey | undefined {
    return this.byName.get(nameHex);
  }

  isRevoked(nameHex: string): boolean {
    return this.revokedNames.has(nameHex);
  }

  /** The one key that encrypts at `nowMs`: the newest with activatesAt ≤ now; none once issuing ended. */
  activeAt(nowMs: number): ScheduledKey | undefined {
    if (nowMs >= this.issuingEndsAtMs) return undefined;
    for (let index = this.keys.length - 1; index >= 0; index--) {
      const key = this.keys[index]!;
      if (key.activatesAtMs <= nowMs) return key;
    }
    return undefined;
  }

  stateOf(key: ScheduledKey | undefined, nowMs: number): ScheduledKeyState {
    if (!key) return 'gone';
    // A key a node holds was published, even if this node's clock runs behind
    // the publisher's: before activation it is PENDING, never gone.
    if (nowMs < key.activatesAtMs) return 'pending';
    if (nowMs < key.retiresAtMs) return 'active';
    return nowMs < key.expiresAtMs ? 'decrypt-only' : 'gone';
  }

  stateAt(nameHex: string, nowMs: number): ScheduledKeyState {
    return this.stateOf(this.byName.get(nameHex), nowMs);
  }
}

/**
 * The lifetime hint for a ticket sealed now. A ticket sealed under the ACTIVE
 * key at t opens until that key's retiresAt + decryptWindowMs ≥ t +
 * decryptWindowMs, so any hint up to decryptWindowMs is always honoured.
 */
export function ticketLifetimeHintMs(params: { ticketLifetimeMs: number; decryptWindowMs: number }): number {
  const requested = params.ticketLifetimeMs > 0 ? params.ticketLifetimeMs : params.decryptWindowMs;
  return Math.min(requested, params.decryptWindowMs);
}
