/**
 * Every Redis key and channel the ticket-key service uses, built here and
 * nowhere else. Keys of one ring share the hash tag `{<ring>}` so every
 * multi-key script of a ring runs on one Redis Cluster slot:
 *
 *   <prefix>:{<ring>}:params    hash   the ring's resolved parameters
 *   <prefix>:{<ring>}:state     hash   epoch, lastRotatedAtMs
 *   <prefix>:{<ring>}:keys      hash   key name hex → JSON record, secret KEK-wrapped
 *   <prefix>:{<ring>}:revoked   zset   revoked key name hex, scored by when it may be forgotten
 *   <prefix>:{<ring>}:watchers  hash   node id → when a replica last saw its stream alive (ms)
 *   <prefix>:{<ring>}:acks      hash   node id → the epoch the node last acknowledged
 *   <prefix>:rings              set    every ring name (an index; each ring's own keys are the truth)
 *   <prefix>:keyset-changes     channel "<ring> <epoch>" after every change
 *   {<prefix>:rotation}:…       BullMQ's keys for the rotation queue (one hash tag)
 */
export interface RingKeys {
  readonly params: string;
  readonly state: string;
  readonly keys: string;
  readonly revoked: string;
  readonly watchers: string;
  readonly acks: string;
}

export interface RedisKeys {
  readonly prefix: string;
  ring(ring: string): RingKeys;
  readonly ringsIndex: string;
  readonly changesChannel: string;
  /** BullMQ's `prefix` option: its keys become `<bullmqPrefix>:<queue>:…`. */
  readonly bullmqPrefix: string;
}

export const defaultKeyPrefix = 'kf';
const prefixPattern = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Throws RangeError unless the prefix is 1–64 characters of [A-Za-z0-9_.:-] (no hash-tag braces). */
export function redisKeys(prefix = defaultKeyPrefix): RedisKeys {
  if (!prefixPattern.test(prefix)) {
    throw new RangeError(`a key prefix is 1 to 64 characters of [A-Za-z0-9_.:-], got "${prefix}"`);
  }
  return {
    prefix,
    ring: (ring) => {
      const base = `${prefix}:{${ring}}`;
      return {
        params: `${base}:params`,
        state: `${base}:state`,
        keys: `${base}:keys`,
        revoked: `${base}:revoked`,
        watchers: `${base}:watchers`,
        acks: `${base}:acks`,
      };
    },
    ringsIndex: `${prefix}:rings`,
    changesChannel: `${prefix}:keyset-changes`,
    bullmqPrefix: `{${prefix}:rotation}`,
  };
}
