import { TicketDecision, TicketReason, TicketStatus } from '@keyfleet/proto';
import type { KeySchedule, ScheduledKey, ScheduledKeyState } from './key-schedule.js';

/**
 * The one table from a ticket's key to its status and default decision. The
 * library codec, keyless OpenTicket, Node's ticket-key hook and the native
 * session-ticket callbacks all read it, so every path answers alike:
 *
 *   the ticket's key            status          default decision  reason
 *   PENDING or ACTIVE, opened   SUCCESS         USE               OK
 *   DECRYPT_ONLY, opened        SUCCESS_RENEW   USE_RENEW         KEY_RETIRED
 *   gone (past its window)      NO_DECRYPT      IGNORE_RENEW      KEY_EXPIRED
 *   revoked                     NO_DECRYPT      IGNORE_RENEW      KEY_REVOKED
 *   a name the set never held   NO_DECRYPT      IGNORE_RENEW      UNKNOWN_KEY
 *   held, bytes do not open     NO_DECRYPT      IGNORE_RENEW      AUTH_FAILED or MALFORMED
 *   an empty ticket extension   EMPTY           IGNORE_RENEW      EMPTY
 *
 * Policies (max session age, SNI binding, revoked client, ...) may then turn
 * a USE or USE_RENEW into a refusal; nothing may turn a refusal into USE.
 */
export interface TicketStatusRow {
  readonly status: TicketStatus;
  readonly reason: TicketReason;
}

const SUCCESS: TicketStatusRow = { status: TicketStatus.SUCCESS, reason: TicketReason.OK };
const SUCCESS_RENEW: TicketStatusRow = {
  status: TicketStatus.SUCCESS_RENEW,
  reason: TicketReason.KEY_RETIRED,
};
const EXPIRED: TicketStatusRow = { status: TicketStatus.NO_DECRYPT, reason: TicketReason.KEY_EXPIRED };
const REVOKED: TicketStatusRow = { status: TicketStatus.NO_DECRYPT, reason: TicketReason.KEY_REVOKED };
const UNKNOWN: TicketStatusRow = { status: TicketStatus.NO_DECRYPT, reason: TicketReason.UNKNOWN_KEY };

/** The status of a ticket that authenticated under a key in `state`. */
export function openedTicketStatus(state: ScheduledKeyState): TicketStatusRow {
  switch (state) {
    case 'pending':
    case 'active':
      return SUCCESS;
    case 'decrypt-only':
      return SUCCESS_RENEW;
    case 'gone':
      return EXPIRED;
  }
}

/** Where a ticket's key name leads: a key that may open it, or the NO_DECRYPT row that ends it. */
export type TicketKeyLookup =
  | { readonly key: ScheduledKey; readonly state: Exclude<ScheduledKeyState, 'gone'> }
  | {
      readonly key: ScheduledKey | undefined;
      readonly state: 'gone' | undefined;
      readonly refused: TicketStatusRow;
    };

/** Looks a ticket's key name up before any decryption: unknown, revoked and expired keys end here. */
export function lookupTicketKey(
  schedule: KeySchedule | undefined,
  nameHex: string,
  nowMs: number,
): TicketKeyLookup {
  const key = schedule?.find(nameHex);
  if (!schedule || !key || key.secret.length === 0) {
    const refused = schedule?.isRevoked(nameHex) ? REVOKED : UNKNOWN;
    return { key: undefined, state: undefined, refused };
  }
  const state = schedule.stateOf(key, nowMs);
  return state === 'gone' ? { key, state, refused: EXPIRED } : { key, state };
}

const USE = { decision: TicketDecision.USE, reason: TicketReason.OK } as const;
const USE_RENEW = { decision: TicketDecision.USE_RENEW, reason: TicketReason.KEY_RETIRED } as const;
const IGNORE_RENEW_EMPTY = { decision: TicketDecision.IGNORE_RENEW, reason: TicketReason.EMPTY } as const;

/** The default decision for a status (the table's third column), before any policy. */
export function defaultTicketDecision(
  status: TicketStatus,
  reason: TicketReason,
): { readonly decision: TicketDecision; readonly reason: TicketReason } {
  switch (status) {
    case TicketStatus.SUCCESS:
      return USE;
    case TicketStatus.SUCCESS_RENEW:
      return USE_RENEW;
    case TicketStatus.EMPTY:
      return IGNORE_RENEW_EMPTY;
    default:
      return { decision: TicketDecision.IGNORE_RENEW, reason };
  }
}
