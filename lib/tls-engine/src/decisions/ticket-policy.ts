import { TicketDecision, TicketReason, TicketStatus } from '@keyfleet/proto';
import type { ScheduledKeyState } from '../keys/key-schedule.js';

/** What a node knows about the connection a ticket arrives on (the contract's ConnectionContext). */
export interface TicketConnection {
  /** SNI, lower-case; empty or absent without one. */
  readonly serverName?: string;
  /** A stable client-certificate identity, e.g. its SHA-256 hex; empty or absent without one. */
  readonly clientIdentity?: string;
  readonly alpnProtocol?: string;
}

/** The ring parameters the decision rules read. */
export interface PolicyRingRules {
  /** 0: no limit. */
  readonly maxSessionAgeMs: number;
  readonly bindServerName: boolean;
  /** How far in the future an issue time may lie before a ticket is refused (clocks differ). */
  readonly maxClockSkewMs: number;
}

/**
 * Everything a decision may depend on. Deliberately no I/O and no clock: the
 * same input gives the same decision on every node.
 */
export interface PolicyInput {
  readonly status: TicketStatus;
  /** The codec's reason (OK, KEY_RETIRED, UNKNOWN_KEY, AUTH_FAILED, ...). */
  readonly reason: TicketReason;
  /** The key's state at nowMs; undefined when the ticket named no key in the set. */
  readonly keyState: ScheduledKeyState | undefined;
  /** Set when the ticket opened. */
  readonly issuedAtMs: number | undefined;
  readonly nowMs: number;
  /** The context bound into the ticket when it was issued (set when it opened). */
  readonly bound: { readonly serverName?: string | undefined; readonly clientIdentity?: string | undefined };
  readonly connection: TicketConnection;
  readonly ring: PolicyRingRules;
  /** The application's own appdata sealed into the ticket (set when it opened). */
  readonly appdata?: Uint8Array | undefined;
  /** In a Node server's ticket: which node issued it, under which key-set epoch. */
  readonly issuer?: { readonly nodeId: string; readonly epoch: number } | undefined;
}

export interface PolicyVerdict {
  readonly decision: TicketDecision;
  readonly reason: TicketReason;
}

/**
 * One step of a decision: receives the input and the verdict so far, returns
 * the verdict to pass on (the same object when it has no objection). Steps
 * run in order; the first is the key-state step, which ignores `current`.
 */
export type TicketPolicy = (input: PolicyInput, current: PolicyVerdict) => PolicyVerdict;

const START: PolicyVerdict = { decision: TicketDecision.UNSPECIFIED, reason: TicketReason.UNSPECIFIED };

/** Runs the steps in order. */
export function composePolicies(policies: readonly TicketPolicy[]): (input: PolicyInput) => PolicyVerdict {
  return (input) => {
    let verdict = START;
    for (const policy of policies) verdict = policy(input, verdict);
    return verdict;
  };
}

const VALID_DECISIONS = new Set<TicketDecision>([
  TicketDecision.ABORT,
  TicketDecision.IGNORE,
  TicketDecision.IGNORE_RENEW,
  TicketDecision.USE,
  TicketDecision.USE_RENEW,
]);

/**
 * OpenSSL's rule, enforced after every policy: USE and USE_RENEW only for a
 * ticket that opened (SUCCESS, SUCCESS_RENEW). Anything else a policy returns
 * for it — and any value that is not one of the five decisions — becomes
 * ABORT with ILLEGAL_DECISION; `illegal` tells the caller to count it.
 */
export function enforceLegalDecision(
  status: TicketStatus,
  verdict: PolicyVerdict,
): PolicyVerdict & { readonly illegal: boolean } {
  const resumes = verdict.decision === TicketDecision.USE || verdict.decision === TicketDecision.USE_RENEW;
  const opened = status === TicketStatus.SUCCESS || status === TicketStatus.SUCCESS_RENEW;
  if (!VALID_DECISIONS.has(verdict.decision) || (resumes && !opened)) {
    return { decision: TicketDecision.ABORT, reason: TicketReason.ILLEGAL_DECISION, illegal: true };
  }
  return { decision: verdict.decision, reason: verdict.reason, illegal: false };
}

/** True for USE and USE_RENEW: the verdict resumes the session. */
export function resumes(verdict: PolicyVerdict): boolean {
  return verdict.decision === TicketDecision.USE || verdict.decision === TicketDecision.USE_RENEW;
}
