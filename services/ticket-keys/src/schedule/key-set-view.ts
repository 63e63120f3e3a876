import { KeyState, type KeySet, type TicketKey } from '@keyfleet/proto';
import { KeySchedule, type ScheduledKeyState, type TicketKeyRecord } from '@keyfleet/tls-engine';
import { ringParamsToProto, type ResolvedRingParams } from './ring-params.js';

/** Everything known about a ring at one epoch, secrets unwrapped (in memory only). */
export interface RingState {
  readonly params: ResolvedRingParams;
  readonly epoch: number;
  readonly keys: readonly TicketKeyRecord[];
  /** Hex names of revoked keys that would not yet have expired. */
  readonly revokedNamesHex: readonly string[];
  /** When the ring last published a key (0: never). */
  readonly lastRotatedAtMs: number;
}

const protoState: Record<ScheduledKeyState, KeyState> = {
  pending: KeyState.PENDING,
  active: KeyState.ACTIVE,
  'decrypt-only': KeyState.DECRYPT_ONLY,
  gone: KeyState.UNSPECIFIED,
};

const finiteOrZero = (ms: number) => (Number.isFinite(ms) ? ms : 0);

/**
 * The proto KeySet a node receives: keys that are PENDING, ACTIVE or
 * DECRYPT_ONLY at `nowMs` in activation order, retire and expiry times derived
 * by the KeySchedule (Infinity, "not yet", becomes 0 as the contract says),
 * and the revoked names. `omitSecrets` leaves every secret empty.
 */
export function toProtoKeySet(
  state: RingState,
  nowMs: number,
  options: { omitSecrets?: boolean } = {},
): KeySet {
  const schedule = scheduleOfRing(state);
  const keys: TicketKey[] = [];
  for (const key of schedule.keys) {
    const scheduled = schedule.stateOf(key, nowMs);
    if (scheduled === 'gone') continue;
    keys.push({
      name: Buffer.from(key.name),
      secret: options.omitSecrets ? Buffer.alloc(0) : Buffer.from(key.secret),
      publishedAtMs: key.publishedAtMs,
      activatesAtMs: key.activatesAtMs,
      retiresAtMs: finiteOrZero(key.retiresAtMs),
      expiresAtMs: finiteOrZero(key.expiresAtMs),
      state: protoState[scheduled],
    });
  }
  return {
    ring: state.params.ring,
    epoch: state.epoch,
    params: ringParamsToProto(state.params),
    keys,
    revokedKeyNames: state.revokedNamesHex.map((hex) => Buffer.from(hex, 'hex')),
    serverTimeMs: nowMs,
  };
}

/** The key schedule of a ring as the store holds it. */
export function scheduleOfRing(state: RingState): KeySchedule {
  return new KeySchedule(state.keys, state.params.decryptWindowMs, new Set(state.revokedNamesHex));
}
