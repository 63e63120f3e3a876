/**
 * KEK rotation from the command line: put the new KEK first in
 * KEYFLEET_KEK_FILE (keep the old line), run
 *
 *   REDIS_URL=… KEYFLEET_KEK_FILE=… npx tsx services/ticket-keys/src/cli/rewrap.ts
 *
 * and every key of every ring is rewrapped under the first KEK; then the old
 * line can go. Safe while the service runs (a record is only replaced if it
 * did not change since it was read). Prints one JSON line.
 */
import { Redis } from 'ioredis';
import { ConfigError, envOptionalString, envString } from '@keyfleet/service-kit';
import { loadKekFile } from '../store/kek.js';
import { KeyStore } from '../store/key-store.js';
import { defaultKeyPrefix, redisKeys } from '../store/redis-keys.js';

/** Rewraps every key under the first KEK of `kekFile`. */
export async function rewrapAllKeys(options: {
  redisUrl: string;
  kekFile: string;
  keyPrefix?: string;
}): Promise<{ rewrapped: number; rings: number; kekId: string }> {
  const keks = loadKekFile(options.kekFile);
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  try {
    const store = new KeyStore({ redis, keys: redisKeys(options.keyPrefix ?? defaultKeyPrefix), keks });
    return { ...(await store.rewrapAll()), kekId: keks.primary.id };
  } finally {
    redis.disconnect();
  }
}

if (process.argv[1] === import.meta.filename) {
  const env = process.env;
  const required = (name: string) => {
    const value = envOptionalString(env, name);
    if (!value) throw new ConfigError(name, 'required');
    return value;
  };
  rewrapAllKeys({
    redisUrl: required('REDIS_URL'),
    kekFile: required('KEYFLEET_KEK_FILE'),
    keyPrefix: envString(env, 'KEYFLEET_KEY_PREFIX', defaultKeyPrefix),
  }).then(
    (result) => console.log(JSON.stringify(result)),
    (error: unknown) => {
      console.error(`rewrap failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
