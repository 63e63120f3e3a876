import { randomBytes } from 'node:crypto';
import { KEY_NAME_BYTES, KEY_SECRET_BYTES } from '@keyfleet/tls-engine';

/** A ticket key that fills a slot and is never used to encrypt. */
export interface FillerKey {
  readonly name: Uint8Array;
  readonly secret: Uint8Array;
}

/**
 * Throwaway keys for the fixed slots nginx and HAProxy need filled. They are
 * random and secret, never derived from anything public: a filler whose bytes
 * an attacker could compute would let them forge tickets that resume. They are
 * drawn once per sync process and reused, so an unchanged key set writes
 * byte-identical files and triggers no reload; a restarted sidecar draws new
 * ones, which costs one reload and nothing else (no ticket is ever sealed
 * under a filler, so none is lost).
 */
export function createFillerKeys(
  random: (size: number) => Uint8Array = randomBytes,
): (slot: number) => FillerKey {
  const drawn = new Map<number, FillerKey>();
  return (slot) => {
    let key = drawn.get(slot);
    if (!key) {
      key = { name: random(KEY_NAME_BYTES), secret: random(KEY_SECRET_BYTES) };
      drawn.set(slot, key);
    }
    return key;
  };
}
