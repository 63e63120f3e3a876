import { randomBytes } from 'node:crypto';
import { keyNameLabel } from '../keys/ticket-key.js';
import type { KeySchedule } from '../keys/key-schedule.js';
import {
  decisionLabel,
  reasonLabel,
  UNKNOWN_KEY_LABEL,
  type EngineMetrics,
} from '../metrics/engine-metrics.js';
import type { TicketKeySource } from './key-source.js';
import type { NativeTicketKeyHandler } from './ticket-key-hook.js';
import { TicketKeyResponder, TicketKeyResult } from './ticket-key-responder.js';

const zero16 = new Uint8Array(16);

/**
 * Node's per-ticket key hook for one server: which key seals a new ticket,
 * and which key (if any) opens an offered one, by the shared decision table.
 * With `countDecisions` it also counts the table's decision per ticket; when
 * the native ticket callbacks run they decide and count instead, so this only
 * picks keys.
 */
export function createTicketKeyHandler(
  keys: TicketKeySource,
  now: () => number,
  metrics: EngineMetrics,
  countDecisions: boolean,
): NativeTicketKeyHandler {
  const responder = new TicketKeyResponder();
  const ring = keys.ring;

  // Opening answers are reused while the schedule and the key's state stay
  // the same: the handshake path then does one map lookup (and one counter
  // increment), and hands Node the same (read-only) array each time.
  interface CachedOpen {
    readonly schedule: KeySchedule;
    readonly validFromMs: number;
    readonly validUntilMs: number;
    readonly reply: [number, Uint8Array, Uint8Array];
    readonly counter: { inc(): void } | undefined;
  }
  const openCache = new Map<string, CachedOpen>();
  const maxCachedNames = 256;
  const open = (schedule: KeySchedule | undefined, name: Buffer, nowMs: number) => {
    const nameHex = name.toString('hex');
    const cached = openCache.get(nameHex);
    if (
      cached &&
      cached.schedule === schedule &&
      nowMs >= cached.validFromMs &&
      nowMs < cached.validUntilMs
    ) {
      cached.counter?.inc();
      return cached.reply;
    }
    const answer = responder.open(schedule, name, nowMs);
    const counter = countDecisions
      ? metrics.ticketDecisions.labels({
          ring,
          key: answer.keyName ? keyNameLabel(answer.keyName) : UNKNOWN_KEY_LABEL,
          decision: decisionLabel(answer.decision),
          reason: reasonLabel(answer.reason),
        })
      : undefined;
    counter?.inc();
    const reply: [number, Uint8Array, Uint8Array] = [answer.result, answer.hmacKey, answer.aesKey];
    // Names the set never held are not cached: a client could send endless ones.
    if (schedule && answer.keyName) {
      if (openCache.size >= maxCachedNames) openCache.clear();
      openCache.set(nameHex, {
        schedule,
        validFromMs: answer.validFromMs,
        validUntilMs: answer.validUntilMs,
        reply,
        counter,
      });
    }
    return reply;
  };

  return (name, _iv, encrypt) => {
    // A throw here would make OpenSSL fail the handshake; a full handshake
    // (or no ticket) is always the safer answer.
    try {
      const nowMs = now();
      const schedule = keys.schedule();
      if (encrypt) {
        const sealed = responder.seal(schedule, nowMs);
        return [sealed.result, sealed.hmacKey, sealed.aesKey, sealed.name, randomBytes(16)];
      }
      return open(schedule, name, nowMs);
    } catch {
      return [TicketKeyResult.NOT_FOUND, zero16, zero16, zero16, zero16];
    }
  };
}
