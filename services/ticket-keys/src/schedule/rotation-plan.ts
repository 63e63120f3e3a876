import { KeySchedule, type TicketKeyRecord } from '@keyfleet/tls-engine';
import type { ResolvedRingParams } from './ring-params.js';

/** A key's public times; planning never needs the secret. */
export type KeyTimes = Pick<TicketKeyRecord, 'name' | 'publishedAtMs' | 'activatesAtMs'>;

type ScheduleParams = Pick<ResolvedRingParams, 'propagationMs' | 'decryptWindowMs' | 'rotationIntervalMs'>;

function scheduleOf(keys: readonly KeyTimes[], decryptWindowMs: number): KeySchedule {
  return new KeySchedule(
    keys.map((key) => ({ ...key, secret: new Uint8Array(0) })),
    decryptWindowMs,
  );
}

/** What a rotation at `nowMs` does to a ring's keys. */
export interface RotationPlan {
  /** When the new key starts to encrypt. */
  readonly activatesAtMs: number;
  /** Hex names of keys that are gone at `nowMs` and can be deleted. */
  readonly dropNamesHex: readonly string[];
}

/**
 * Plans a rotation: the new key activates propagationMs from now (and never
 * before a key already scheduled, so activation order follows publication
 * order), and keys past their expiry are dropped. The ACTIVE key is never
 * dropped: its retiresAt is still ahead, so it cannot be gone.
 */
export function planRotation(keys: readonly KeyTimes[], params: ScheduleParams, nowMs: number): RotationPlan {
  const schedule = scheduleOf(keys, params.decryptWindowMs);
  const newest = schedule.keys.at(-1);
  const activatesAtMs = Math.max(nowMs + params.propagationMs, newest ? newest.activatesAtMs + 1 : 0);
  const dropNamesHex = schedule.keys
    .filter((key) => schedule.stateOf(key, nowMs) === 'gone')
    .map((key) => key.nameHex);
  return { activatesAtMs, dropNamesHex };
}

/** What revoking one key at `nowMs` does, or `undefined` when the ring has no such key. */
export interface RevocationPlan {
  readonly nameHex: string;
  /** True when the key was the one encrypting: a replacement must take over at once. */
  readonly wasActive: boolean;
  /** Keep the name in the revoked set until then: any ticket under it would have expired by now. */
  readonly revokedUntilMs: number;
  /** activatesAt for the replacement key when `wasActive`: now, not after propagation. */
  readonly replacementActivatesAtMs: number | undefined;
}

export function planRevocation(
  keys: readonly KeyTimes[],
  params: ScheduleParams,
  nameHex: string,
  nowMs: number,
): RevocationPlan | undefined {
  const schedule = scheduleOf(keys, params.decryptWindowMs);
  const key = schedule.find(nameHex);
  const state = schedule.stateOf(key, nowMs);
  if (!key || state === 'gone') return undefined;
  const wasActive = state === 'active';
  // A key that has not retired yet has no finite expiry; its tickets live at
  // most decryptWindowMs past the moment it stops encrypting, which is now.
  const revokedUntilMs = Number.isFinite(key.expiresAtMs) ? key.expiresAtMs : nowMs + params.decryptWindowMs;
  return { nameHex, wasActive, revokedUntilMs, replacementActivatesAtMs: wasActive ? nowMs : undefined };
}

/**
 * The PENDING key an early promotion may activate at `nowMs`: the earliest
 * pending one (so activation order is kept). Promotion only ever moves
 * activation earlier, never later than scheduled.
 */
export function planPromotion(
  keys: readonly KeyTimes[],
  params: ScheduleParams,
  nowMs: number,
): { nameHex: string; activatesAtMs: number } | undefined {
  const schedule = scheduleOf(keys, params.decryptWindowMs);
  const pending = schedule.keys.find((key) => schedule.stateOf(key, nowMs) === 'pending');
  return pending ? { nameHex: pending.nameHex, activatesAtMs: nowMs } : undefined;
}

/**
 * Whether the scheduled rotation job should publish a key now. The job fires
 * on a fixed grid, and a key published by the previous firing lands a little
 * after its grid point, so "an interval has passed" is checked with a slack
 * of a quarter interval (at most a minute). A manual Rotate moves the newest
 * publication and so resets the clock; after downtime one firing rotates once.
 */
export function rotationIsDue(
  keys: readonly KeyTimes[],
  params: Pick<ResolvedRingParams, 'rotationIntervalMs'>,
  nowMs: number,
): boolean {
  const newestPublishedAtMs = keys.reduce((latest, key) => Math.max(latest, key.publishedAtMs), -Infinity);
  if (newestPublishedAtMs === -Infinity) return true;
  const slackMs = Math.min(params.rotationIntervalMs / 4, 60_000);
  return nowMs - newestPublishedAtMs >= params.rotationIntervalMs - slackMs;
}
