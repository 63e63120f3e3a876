import type { Redis } from 'ioredis';
import type { Logger } from '@keyfleet/service-kit';
import type { RedisKeys } from '../store/redis-keys.js';

export interface WatcherRegistryOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** Default Date.now. */
  readonly clock?: () => number;
  /** How often this replica re-announces its live watchers. Default 2000. */
  readonly refreshMs?: number;
}

/** One node's entry in `<prefix>:{<ring>}:watchers`. */
interface WatcherEntry {
  /** Last acknowledged epoch (0: none yet). */
  e: number;
  /** When a replica last saw the node's stream alive. */
  s: number;
}

/** Ack coverage of a ring: live watchers across replicas, and how many hold the newest epoch. */
export interface AckCoverage {
  readonly live: number;
  readonly current: number;
  /** current / live, or 1 when nobody watches (nothing is behind). */
  readonly ratio: number;
}

/**
 * Who watches which ring and which epoch each node has applied. Each replica
 * knows its own streams in memory and announces them in one Redis hash per
 * ring (refreshed every refreshMs; an entry not refreshed for three periods
 * is dead), so coverage and early promotion count every live node of the
 * fleet, not only those on this replica — promoting on a partial view could
 * let one node encrypt under a key another node has not received.
 */
export class WatcherRegistry {
  /** ring → node id → { open streams, acked epoch } */
  private readonly local = new Map<string, Map<string, { streams: number; epoch: number }>>();
  private readonly coverageByRing = new Map<string, AckCoverage>();
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly refreshMs: number;
  private readonly timer: NodeJS.Timeout;

  constructor(options: WatcherRegistryOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    this.refreshMs = options.refreshMs ?? 2000;
    this.timer = setInterval(() => void this.announceAll(), this.refreshMs);
    this.timer.unref();
  }

  /** A stream opened; returns the function that closes it. */
  add(ring: string, nodeId: string): () => void {
    let nodes = this.local.get(ring);
    if (!nodes) this.local.set(ring, (nodes = new Map<string, { streams: number; epoch: number }>()));
    const entry = nodes.get(nodeId) ?? { streams: 0, epoch: 0 };
    entry.streams++;
    nodes.set(nodeId, entry);
    void this.announce(ring, [[nodeId, entry.epoch]]);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      entry.streams--;
      if (entry.streams > 0) return;
      nodes.delete(nodeId);
      if (nodes.size === 0) this.local.delete(ring);
      this.redis.hdel(this.keys.ring(ring).watchers, nodeId).catch(() => undefined);
    };
  }

  /** Live streams of the ring on this replica. */
  localWatchers(ring: string): number {
    let streams = 0;
    for (const entry of this.local.get(ring)?.values() ?? []) streams += entry.streams;
    return streams;
  }

  /** Records the node's acknowledged epoch, here and in Redis. */
  async ack(ring: string, nodeId: string, epoch: number): Promise<void> {
    const entry = this.local.get(ring)?.get(nodeId);
    if (entry) entry.epoch = Math.max(entry.epoch, epoch);
    await this.announce(ring, [[nodeId, entry?.epoch ?? epoch]]);
  }

  /**
   * Coverage of `newestEpoch` among live watchers fleet-wide (from Redis),
   * falling back to this replica's own watchers while Redis is unreachable.
   */
  async coverage(ring: string, newestEpoch: number): Promise<AckCoverage> {
    let entries: WatcherEntry[];
    try {
      const hash = await this.redis.hgetall(this.keys.ring(ring).watchers);
      const liveSince = this.clock() - 3 * this.refreshMs;
      entries = Object.values(hash)
        .map((text) => parseEntry(text))
        .filter((entry): entry is WatcherEntry => entry !== undefined && entry.s >= liveSince);
    } catch {
      entries = [...(this.local.get(ring)?.values() ?? [])].map((entry) => ({ e: entry.epoch, s: 0 }));
    }
    const current = entries.filter((entry) => entry.e >= newestEpoch).length;
    const coverage = {
      live: entries.length,
      current,
      ratio: entries.length === 0 ? 1 : current / entries.length,
    };
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

  private async announce(ring: string, nodes: [string, number][]): Promise<void> {
    if (nodes.length === 0) return;
    const key = this.keys.ring(ring).watchers;
    const seenAtMs = this.clock();
    const fields = nodes.flatMap(([nodeId, epoch]) => [nodeId, JSON.stringify({ e: epoch, s: seenAtMs })]);
    try {
      await this.redis
        .multi()
        .hset(key, ...fields)
        .pexpire(key, 10 * this.refreshMs)
        .exec();
    } catch (error) {
      this.logger.debug(
        { ring, err: error instanceof Error ? error.message : String(error) },
        'announce failed',
      );
    }
  }

  private async announceAll(): Promise<void> {
    for (const [ring, nodes] of this.local) {
      await this.announce(
        ring,
        [...nodes].map(([nodeId, entry]) => [nodeId, entry.epoch]),
      );
    }
  }
}

function parseEntry(text: string): WatcherEntry | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<WatcherEntry>;
    return typeof parsed.e === 'number' && typeof parsed.s === 'number'
      ? { e: parsed.e, s: parsed.s }
      : undefined;
  } catch {
    return undefined;
  }
}
