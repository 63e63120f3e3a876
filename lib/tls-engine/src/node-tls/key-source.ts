import { KeySchedule, ticketLifetimeHintMs } from '../keys/key-schedule.js';
import { keyNameHex, type TicketKeyRecord } from '../keys/ticket-key.js';
import { DEFAULT_ROTATION_INTERVAL_MS, type RingRules } from '../engine/ticket-key-ring.js';

/**
 * Where a TLS server's ticket keys come from: the ring's current schedule, and
 * optionally a way to hear that it changed. The engine's KeySetProvider
 * (WatchKeySet) satisfies it; `staticKeySource` serves tests and static setups.
 * `schedule()` is called on every handshake, so it must be cheap (return the
 * snapshot the source already holds).
 */
export interface TicketKeySource {
  readonly ring: string;
  /** The current schedule; undefined before the first key set arrived. */
  schedule(): KeySchedule | undefined;
  /**
   * The ring's rules: the ticket lifetime (Node's session timeout and lifetime
   * hint), max session age and SNI binding. Undefined before the first key set;
   * a source without it leaves Node's defaults and applies no such rule.
   */
  rules?(): RingRules | undefined;
  /** Epoch of the key set held (written into each ticket's appdata). */
  epoch?(): number | undefined;
  addListener?(listener: () => void): void;
  removeListener?(listener: () => void): void;
}

/** A key source whose set changes only when told: tests, fixed key files, air-gapped setups. */
export interface StaticKeySource extends TicketKeySource {
  /** Replaces the key set (a rotation or a revocation) and tells listeners. */
  update(
    keys: readonly TicketKeyRecord[],
    revokedNames?: Iterable<Uint8Array | string>,
    rules?: Partial<RingRules>,
  ): void;
}

/**
 * A key source over a fixed key set. `revokedNames` accepts 16-byte names or
 * their lower-case hex.
 */
export function staticKeySource(
  keys: readonly TicketKeyRecord[],
  decryptWindowMs: number,
  options: { ring?: string; revokedNames?: Iterable<Uint8Array | string>; rules?: Partial<RingRules> } = {},
): StaticKeySource {
  const listeners = new Set<() => void>();
  const build = (set: readonly TicketKeyRecord[], revoked: Iterable<Uint8Array | string> = []) =>
    new KeySchedule(
      set,
      decryptWindowMs,
      new Set([...revoked].map((name) => (typeof name === 'string' ? name.toLowerCase() : keyNameHex(name)))),
    );
  const rulesOf = (rules: Partial<RingRules> = {}): RingRules => ({
    rotationIntervalMs: rules.rotationIntervalMs ?? DEFAULT_ROTATION_INTERVAL_MS,
    decryptWindowMs,
    ticketLifetimeHintMs: ticketLifetimeHintMs({
      ticketLifetimeMs: rules.ticketLifetimeHintMs ?? 0,
      decryptWindowMs,
    }),
    maxSessionAgeMs: rules.maxSessionAgeMs ?? 0,
    bindServerName: rules.bindServerName ?? false,
  });
  let current = build(keys, options.revokedNames);
  let rules = rulesOf(options.rules);
  let epoch = 1;
  return {
    ring: options.ring ?? 'default',
    schedule: () => current,
    rules: () => rules,
    epoch: () => epoch,
    update(next, revokedNames, nextRules) {
      current = build(next, revokedNames);
      if (nextRules) rules = rulesOf(nextRules);
      epoch++;
      for (const listener of [...listeners]) listener();
    },
    addListener: (listener) => void listeners.add(listener),
    removeListener: (listener) => void listeners.delete(listener),
  };
}
