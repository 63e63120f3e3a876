import { TicketDecision, TicketReason } from '@keyfleet/proto';
import { defaultTicketDecision } from '../keys/ticket-decision-table.js';
import { resumes, type TicketPolicy } from './ticket-policy.js';

/**
 * The key-state step: the default decision of the shared table
 * (keys/ticket-decision-table.ts). The steps after it, for a ticket that would
 * resume, in this order: session older than max_session_age_ms → IGNORE_RENEW
 * SESSION_TOO_OLD; bound server name ≠ SNI → IGNORE_RENEW SNI_MISMATCH; bound
 * client identity revoked → IGNORE_RENEW CLIENT_REVOKED; issued more than the
 * allowed skew in the future → IGNORE_RENEW ISSUED_IN_FUTURE.
 */
export const keyStatePolicy: TicketPolicy = (input) => defaultTicketDecision(input.status, input.reason);

const refuse = (reason: TicketReason) => ({ decision: TicketDecision.IGNORE_RENEW, reason });

/** Refuses sessions older than the ring's max_session_age_ms (0: no limit), counted from the first issue. */
export const maxSessionAgePolicy: TicketPolicy = (input, current) => {
  if (!resumes(current) || input.ring.maxSessionAgeMs <= 0 || input.issuedAtMs === undefined) return current;
  return input.nowMs - input.issuedAtMs > input.ring.maxSessionAgeMs
    ? refuse(TicketReason.SESSION_TOO_OLD)
    : current;
};

/**
 * With bind_server_name, a ticket resumes only on the SNI it was issued on. A
 * ticket issued before binding was switched on carries no server name and is
 * refused too: the cost is one full handshake, and it keeps the rule simple.
 */
export const serverNameBindingPolicy: TicketPolicy = (input, current) => {
  if (!resumes(current) || !input.ring.bindServerName) return current;
  const bound = input.bound.serverName;
  const presented = (input.connection.serverName ?? '').toLowerCase();
  return bound !== undefined && bound.toLowerCase() === presented
    ? current
    : refuse(TicketReason.SNI_MISMATCH);
};

/** The narrow interface a revocation list offers: synchronous, answered from memory. */
export interface RevokedClientSource {
  isRevoked(identity: string): boolean;
}

/** Refuses tickets bound to a client identity the source says is revoked. */
export function revokedClientPolicy(source: RevokedClientSource): TicketPolicy {
  return (input, current) => {
    const identity = input.bound.clientIdentity;
    if (!resumes(current) || !identity) return current;
    return source.isRevoked(identity) ? refuse(TicketReason.CLIENT_REVOKED) : current;
  };
}

/** Refuses tickets whose issue time lies beyond the allowed clock skew in the future. */
export const issuedInFuturePolicy: TicketPolicy = (input, current) => {
  if (!resumes(current) || input.issuedAtMs === undefined) return current;
  return input.issuedAtMs - input.nowMs > input.ring.maxClockSkewMs
    ? refuse(TicketReason.ISSUED_IN_FUTURE)
    : current;
};

/** The default chain, with the revoked-client rule when a source is given. */
export function defaultTicketPolicies(
  options: { revokedClients?: RevokedClientSource } = {},
): TicketPolicy[] {
  return [
    keyStatePolicy,
    maxSessionAgePolicy,
    serverNameBindingPolicy,
    ...(options.revokedClients ? [revokedClientPolicy(options.revokedClients)] : []),
    issuedInFuturePolicy,
  ];
}
