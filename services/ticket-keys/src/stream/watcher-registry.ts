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

/**
 * Who watches which ring and which epoch each node has applied, fleet-wide.
 * A replica announces the nodes whose streams it holds in the ring's
 * `:watchers` hash (node → last seen, refreshed every refreshMs; not
 * refreshed for three periods = gone), and any replica that receives an
 * AckKeySet records it in the `:acks` hash — a node's ack may reach another
 * replica than its stream, so the two are kept apart and neither overwrites
 * the other. Coverage and early promotion count every live node of the
 * fleet: promoting on one replica's partial view could let a node encrypt
 * under a key another node has not received.
 */
export class WatcherRegistry {
  /** ring → node id → open streams on this replica */
  private readonly streams = new Map<string, Map<string, number>>();
  /** ring → node id → acked epoch, as seen by this replica (fallback while Redis is away) */
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
  add(ring: string, nodeId: string): () => void {
    let nodes = this.streams.get(ring);
    if (!nodes) this.streams.set(ring, (nodes = new Map<string, number>()));
    nodes.set(nodeId, (nodes.get(nodeId) ?? 0) + 1);
    void this.announce(ring, [nodeId]);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const left = (nodes.get(nodeId) ?? 1) - 1;
      if (left > 0) return void nodes.set(nodeId, left);
      nodes.delete(nodeId);
      if (nodes.size === 0) this.streams.delete(ring);
      this.redis.hdel(this.keys.ring(ring).watchers, nodeId).catch(() => undefined);
    };
  }

  /** Live streams of the ring on this replica. */
  localWatchers(ring: string): number {
    let count = 0;
    for (const streams of this.streams.get(ring)?.values() ?? []) count += streams;
    return count;
  }

  /** Records the node's acknowledged epoch, here and in Redis. */
  async ack(ring: string, nodeId: string, epoch: number): Promise<void> {
    let acks = this.localAcks.get(ring);
    if (!acks) this.localAcks.set(ring, (acks = new Map<string, number>()));
    acks.set(nodeId, epoch);
    const key = this.keys.ring(ring).acks;
    try {
      await this.redis
        .multi()
        .hset(key, nodeId, String(epoch))
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
    let live: string[];
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
        .map(([nodeId]) => nodeId);
      acks = acked;
    } catch {
      live = [...(this.streams.get(ring)?.keys() ?? [])];
      acks = Object.fromEntries([...(this.localAcks.get(ring) ?? [])].map(([node, e]) => [node, String(e)]));
    }
    const current = live.filter((nodeId) => Number(acks[nodeId] ?? 0) >= newestEpoch).length;
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

  private async announce(ring: string, nodeIds: string[]): Promise<void> {
    if (nodeIds.length === 0) return;
    const key = this.keys.ring(ring).watchers;
    const seenAtMs = String(this.clock());
    try {
      await this.redis
        .multi()
        .hset(key, ...nodeIds.flatMap((nodeId) => [nodeId, seenAtMs]))
        .pexpire(key, 10 * this.refreshMs)
        .exec();
    } catch (error) {
      this.logger.debug({ ring, err: errorText(error) }, 'watchers not announced');
    }
  }

  /** Re-announce this replica's watchers, then refresh every ring's coverage for the metrics. */
  private async tick(): Promise<void> {
    for (const [ring, nodes] of this.streams) await this.announce(ring, [...nodes.keys()]);
    for (const ring of this.rings()) {
      const newest = this.newestEpoch(ring);
      if (newest !== undefined) await this.coverage(ring, newest).catch(() => undefined);
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
