import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@keyfleet/service-kit';
import type { RedisKeys } from '../store/redis-keys.js';

export interface WatcherRegistryOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** The ring's newest epoch as this replica knows it (for the periodic coverage). */
  readonly newestEpoch: (ring: string) => number | undefined;
  /** Every ring whose coverage the metrics report. */
  readonly rings: () => Iterable<string>;
  /** Default Date.now. */
  readonly clock?: () => number;
  /** How often this replica re-announces its live watchers and recomputes coverage. Default 2000. */
  readonly refreshMs?: number;
}

/** Ack coverage of a ring: live watchers across replicas, and how many hold the newest epoch. */
export interface AckCoverage {
  readonly live: number;
  readonly current: number;
  /** current / live, or 1 when nobody watches (nothing is behind). */
  readonly ratio: number;
}

/** Who holds a stream or sends an ack: the caller's certificate identity and the node id it names. */
export interface Watcher {
  readonly identity: string;
  readonly nodeId: string;
}

/** The Redis hash field of an ack: an ack counts only for streams of the same identity and node id. */
const ackField = (watcher: Watcher) => JSON.stringify([watcher.identity, watcher.nodeId]);

/** The watchers-hash field of one stream; undefined for a field this version did not write. */
function parseStreamField(field: string): Watcher | undefined {
  try {
    const parsed: unknown = JSON.parse(field);
    if (Array.isArray(parsed) && parsed.length === 3 && parsed.every((part) => typeof part === 'string')) {
      return { identity: parsed[0] as string, nodeId: parsed[1] as string };
    }
  } catch {
    // an entry in another format: not a stream this version counts
  }
  return undefined;
}

let streamCounter = 0;
const replicaTag = `${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * Who watches which ring and which epoch each watcher has applied,
 * fleet-wide. A replica announces every stream it holds in the ring's
 * `:watchers` hash (one field per stream: identity, node id, stream id →
 * last seen, refreshed every refreshMs; not refreshed for three periods =
 * gone), and any replica that receives an AckKeySet records it in the
 * `:acks` hash under the caller's identity and the node id — a node's ack may
 * reach another replica than its stream, so the two are kept apart. Coverage
 * counts streams, and a stream is current only when the same identity acked
 * the newest epoch for its node id: another caller naming the node's id acks
 * nothing. Coverage and early promotion count every live stream of the
 * fleet: promoting on one replica's partial view could let a node encrypt
 * under a key another node has not received.
 */
export class WatcherRegistry {
  /** ring → stream field → watcher, for the streams open on this replica */
  private readonly streams = new Map<string, Map<string, Watcher>>();
  /** ring → ack field → acked epoch, as seen by this replica (fallback while Redis is away) */
  private readonly localAcks = new Map<string, Map<string, number>>();
  private readonly coverageByRing = new Map<string, AckCoverage>();
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly refreshMs: number;
  private readonly newestEpoch: (ring: string) => number | undefined;
  private readonly rings: () => Iterable<string>;
  private readonly timer: NodeJS.Timeout;

  constructor(options: WatcherRegistryOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    this.refreshMs = options.refreshMs ?? 2000;
    this.newestEpoch = options.newestEpoch;
    this.rings = options.rings;
    this.timer = setInterval(() => void this.tick(), this.refreshMs);
    this.timer.unref();
  }

  /** A stream opened; returns the function that closes it. */
  add(ring: string, watcher: Watcher): () => void {
    let open = this.streams.get(ring);
    if (!open) this.streams.set(ring, (open = new Map<string, Watcher>()));
    const field = JSON.stringify([watcher.identity, watcher.nodeId, `${replicaTag}-${++streamCounter}`]);
    open.set(field, watcher);
    void this.announce(ring, [field]);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      open.delete(field);
      if (open.size === 0 && this.streams.get(ring) === open) this.streams.delete(ring);
      this.redis.hdel(this.keys.ring(ring).watchers, field).catch(() => undefined);
    };
  }

  /** Live streams of the ring on this replica. */
  localWatchers(ring: string): number {
    return this.streams.get(ring)?.size ?? 0;
  }

  /** Records the epoch the caller acknowledged for its node id, here and in Redis. */
  async ack(ring: string, watcher: Watcher, epoch: number): Promise<void> {
    const field = ackField(watcher);
    let acks = this.localAcks.get(ring);
    if (!acks) this.localAcks.set(ring, (acks = new Map<string, number>()));
    acks.set(field, epoch);
    const key = this.keys.ring(ring).acks;
    try {
      await this.redis
        .multi()
        .hset(key, field, String(epoch))
        .pexpire(key, 30 * this.refreshMs)
        .exec();
    } catch (error) {
      this.logger.debug({ ring, err: errorText(error) }, 'ack not recorded in Redis');
    }
  }

  /**
   * Coverage of `newestEpoch` among live watchers fleet-wide (from Redis),
   * falling back to this replica's own view while Redis is unreachable.
   */
  async coverage(ring: string, newestEpoch: number): Promise<AckCoverage> {
    let live: Watcher[];
    let acks: Record<string, string>;
    try {
      const ringKeys = this.keys.ring(ring);
      const results = await this.redis.multi().hgetall(ringKeys.watchers).hgetall(ringKeys.acks).exec();
      if (!results || results.some(([error]) => error)) throw new Error('coverage read failed');
      const [seen, acked] = results.map(([, value]) => value as Record<string, string>) as [
        Record<string, string>,
        Record<string, string>,
      ];
      const liveSinceMs = this.clock() - 3 * this.refreshMs;
      live = Object.entries(seen)
        .filter(([, seenAtMs]) => Number(seenAtMs) >= liveSinceMs)
        .map(([field]) => parseStreamField(field))
        .filter((watcher): watcher is Watcher => watcher !== undefined);
      acks = acked;
    } catch {
      live = [...(this.streams.get(ring)?.values() ?? [])];
      acks = Object.fromEntries(
        [...(this.localAcks.get(ring) ?? [])].map(([field, e]) => [field, String(e)]),
      );
    }
    const current = live.filter((watcher) => Number(acks[ackField(watcher)] ?? 0) >= newestEpoch).length;
    const coverage = { live: live.length, current, ratio: live.length === 0 ? 1 : current / live.length };
    this.coverageByRing.set(ring, coverage);
    return coverage;
  }

  /** The last coverage computed for the ring (metrics; no I/O). */
  lastCoverage(ring: string): AckCoverage | undefined {
    return this.coverageByRing.get(ring);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async announce(ring: string, fields: string[]): Promise<void> {
    if (fields.length === 0) return;
    const key = this.keys.ring(ring).watchers;
    const seenAtMs = String(this.clock());
    try {
      await this.redis
        .multi()
        .hset(key, ...fields.flatMap((field) => [field, seenAtMs]))
        .pexpire(key, 10 * this.refreshMs)
        .exec();
    } catch (error) {
      this.logger.debug({ ring, err: errorText(error) }, 'watchers not announced');
    }
  }

  /** Re-announce this replica's watchers, then refresh every ring's coverage for the metrics. */
  private async tick(): Promise<void> {
    for (const [ring, open] of this.streams) await this.announce(ring, [...open.keys()]);
    for (const ring of this.rings()) {
      const newest = this.newestEpoch(ring);
      if (newest !== undefined) await this.coverage(ring, newest).catch(() => undefined);
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
