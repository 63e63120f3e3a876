import type { KeySet } from '@keyfleet/proto';
import { KeySchedule } from './key-schedule.js';
import { keyNameHex } from './ticket-key.js';

/**
 * The schedule of a contract KeySet: its keys, its ring's decrypt window and
 * its revoked names. A set fetched without secrets gives keys with empty
 * secrets (enough to compute states and order, not to seal).
 */
export function keyScheduleOfKeySet(keySet: KeySet): KeySchedule {
  return new KeySchedule(
    keySet.keys.map((key) => ({
      name: key.name,
      secret: key.secret,
      publishedAtMs: key.publishedAtMs,
      activatesAtMs: key.activatesAtMs,
    })),
    keySet.params?.decryptWindowMs ?? 0,
    new Set(keySet.revokedKeyNames.map((name) => keyNameHex(name))),
  );
}
