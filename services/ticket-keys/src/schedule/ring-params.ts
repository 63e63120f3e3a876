import { invalidArgument } from '@keyfleet/service-kit';
import type { RingParams } from '@keyfleet/proto';

/**
 * A ring's parameters with every default filled in and every bound checked
 * (see RingParams in proto/keyfleet/v1/ticket_keys.proto). Everything after
 * `compileRingParams` may rely on these invariants: propagationMs <
 * rotationIntervalMs and ticketLifetimeMs ≤ decryptWindowMs.
 */
export interface ResolvedRingParams {
  readonly ring: string;
  readonly rotationIntervalMs: number;
  readonly propagationMs: number;
  readonly decryptWindowMs: number;
  readonly ticketLifetimeMs: number;
  readonly maxSessionAgeMs: number;
  readonly bindServerName: boolean;
  readonly promoteOnFullAck: boolean;
}

const hourMs = 3_600_000;
const weekMs = 7 * 24 * hourMs;

export const ringParamDefaults = {
  rotationIntervalMs: hourMs,
  propagationMs: 60_000,
  decryptWindowMs: 12 * hourMs,
} as const;

export const ringParamBounds = {
  rotationIntervalMs: { min: 1000, max: weekMs },
  propagationMs: { min: 100 },
  decryptWindowMs: { min: 1000, max: weekMs },
  maxSessionAgeMs: { min: 0, max: 365 * 24 * hourMs },
} as const;

const ringNamePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Throws INVALID_ARGUMENT naming `field` unless `ring` is 1–63 chars of [a-z0-9._-] starting with a letter or digit. */
export function checkRingName(ring: string, field = 'ring'): string {
  if (!ringNamePattern.test(ring)) {
    throw invalidArgument(
      field,
      `must be 1 to 63 characters of [a-z0-9._-] starting with a letter or digit, got ${JSON.stringify(ring.slice(0, 80))}`,
    );
  }
  return ring;
}

function duration(
  field: string,
  value: number,
  fallback: number,
  bounds: { min: number; max?: number },
): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(field, `must be a non-negative whole number of milliseconds, got ${value}`);
  }
  const resolved = value === 0 ? fallback : value;
  if (resolved < bounds.min || (bounds.max !== undefined && resolved > bounds.max)) {
    const range = bounds.max === undefined ? `at least ${bounds.min}` : `${bounds.min} to ${bounds.max}`;
    throw invalidArgument(field, `must be ${range} ms, got ${resolved}`);
  }
  return resolved;
}

/**
 * Validates a ring's parameters and fills in the defaults (a zero duration
 * means "the default"). Pure; throws KeyfleetError(INVALID_ARGUMENT) whose
 * message names the field, so PutRing and start-up bootstrap fail the same way.
 */
export function compileRingParams(params: Partial<RingParams> & { ring: string }): ResolvedRingParams {
  const ring = checkRingName(params.ring, 'params.ring');
  const rotationIntervalMs = duration(
    'params.rotation_interval_ms',
    params.rotationIntervalMs ?? 0,
    ringParamDefaults.rotationIntervalMs,
    ringParamBounds.rotationIntervalMs,
  );
  const propagationMs = duration(
    'params.propagation_ms',
    params.propagationMs ?? 0,
    // The default must still leave room inside a short interval.
    Math.min(ringParamDefaults.propagationMs, Math.floor(rotationIntervalMs / 2)),
    ringParamBounds.propagationMs,
  );
  if (propagationMs >= rotationIntervalMs) {
    throw invalidArgument(
      'params.propagation_ms',
      `must be less than rotation_interval_ms (${rotationIntervalMs}), got ${propagationMs}`,
    );
  }
  const decryptWindowMs = duration(
    'params.decrypt_window_ms',
    params.decryptWindowMs ?? 0,
    ringParamDefaults.decryptWindowMs,
    ringParamBounds.decryptWindowMs,
  );
  const ticketLifetimeMs = duration(
    'params.ticket_lifetime_ms',
    params.ticketLifetimeMs ?? 0,
    decryptWindowMs,
    {
      min: 1,
      max: decryptWindowMs,
    },
  );
  const maxSessionAgeMs = duration(
    'params.max_session_age_ms',
    params.maxSessionAgeMs ?? 0,
    0,
    ringParamBounds.maxSessionAgeMs,
  );
  return {
    ring,
    rotationIntervalMs,
    propagationMs,
    decryptWindowMs,
    ticketLifetimeMs,
    maxSessionAgeMs,
    bindServerName: params.bindServerName ?? false,
    promoteOnFullAck: params.promoteOnFullAck ?? false,
  };
}

/** The proto form of resolved parameters (PutRingResponse, KeySet.params). */
export function ringParamsToProto(params: ResolvedRingParams): RingParams {
  return { ...params };
}
