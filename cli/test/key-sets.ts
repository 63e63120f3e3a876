import type { KeySet, TicketKey } from '@keyfleet/proto';
import { KeyState } from '@keyfleet/proto';

/**
 * Hand-built key sets for the sync's tests: the shape the ticket-keys service
 * streams, with recognisable names (every byte = the key's id) and secrets.
 */
export const minuteMs = 60_000;
export const hourMs = 60 * minuteMs;

export function testKey(
  id: number,
  publishedAtMs: number,
  activatesAtMs: number,
  secretByte = id,
): TicketKey {
  return {
    name: Buffer.alloc(16, id),
    secret: Buffer.alloc(32, secretByte),
    publishedAtMs,
    activatesAtMs,
    retiresAtMs: 0,
    expiresAtMs: 0,
    state: KeyState.UNSPECIFIED,
  };
}

export function testKeySet(
  keys: TicketKey[],
  options: { decryptWindowMs?: number; revoked?: number[] } = {},
): KeySet {
  return {
    ring: 'edge',
    epoch: keys.length,
    params: {
      ring: 'edge',
      rotationIntervalMs: hourMs,
      propagationMs: minuteMs,
      decryptWindowMs: options.decryptWindowMs ?? 12 * hourMs,
      ticketLifetimeMs: 0,
      maxSessionAgeMs: 0,
      bindServerName: false,
      promoteOnFullAck: false,
    },
    keys,
    revokedKeyNames: (options.revoked ?? []).map((id) => Buffer.alloc(16, id)),
    serverTimeMs: 0,
  };
}

export const hexName = (id: number): string => Buffer.alloc(16, id).toString('hex');
