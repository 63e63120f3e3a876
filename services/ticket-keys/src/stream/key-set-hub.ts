import type { Redis } from 'ioredis';
import { catchUpAfterResubscribe, type Logger } from '@keyfleet/service-kit';
import type { RingState } from '../schedule/key-set-view.js';
import type { KeyStore } from '../store/key-store.js';

/** Receives a ring's state after every change this replica learns of. */
export type RingListener = (state: RingState) => void;

/** The narrow part of the store the hub reads and restores through. */
export type HubStore = Pick<KeyStore, 'readRing' | 'restoreRing' | 'listRingNames'>;

export interface KeySetHubOptions {
  /** A dedicated connection: it enters subscriber mode. */
  readonly subscriber: Redis;
  readonly store: HubStore;
  readonly channel: string;
  readonly logger: Logger;
  /**
   * How often every known ring is re-read, so a change lost to pub/sub
   * (at-most-once) reaches watchers within this, well inside a ring's
   * propagation delay. Default 15000.
   */
  readonly reconcileEveryMs?: number;
}

/**
 * One Redis subscription per replica, fanned out in memory to every watcher
 * of every ring. A change message ("<ring> <epoch>") makes the hub read the
 * ring once (reads of one ring are coalesced, never concurrent) and hand the
 * new state to every listener; the last state of each ring stays cached, so
 * watchers keep their snapshot while Redis is down. When the subscription
 * comes back after a disconnect, every known ring is read once and pushed if
 * its epoch moved: streams catch up exactly once. A ring Redis has lost
 * (restart without persistence) is written back from the cache.
 */
export class KeySetHub {
  private readonly states = new Map<string, RingState>();
  private readonly listeners = new Map<string, Set<RingListener>>();
  /** Rings with a read in flight, and whether another read was asked for meanwhile. */
  private readonly reading = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly subscriber: Redis;
  private readonly store: HubStore;
  private readonly channel: string;
  private readonly logger: Logger;
  private readonly reconcileEveryMs: number;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private stopFollowingReconnects: (() => void) | undefined;
  private closed = false;

  constructor(options: KeySetHubOptions) {
    this.subscriber = options.subscriber;
    this.store = options.store;
    this.channel = options.channel;
    this.logger = options.logger;
    this.reconcileEveryMs = options.reconcileEveryMs ?? 15_000;
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
  }

  /** Subscribes (resolves once the subscription is confirmed) and loads every ring Redis lists. */
  async start(): Promise<void> {
    // A SUBSCRIBE queued before the connection is ready can be lost to
    // ioredis's ready check; issue it on a ready connection (autoResubscribe
    // then keeps it across reconnects).
    if (this.subscriber.status !== 'ready') {
      await new Promise<void>((resolve) => this.subscriber.once('ready', () => resolve()));
    }
    await this.subscriber.subscribe(this.channel);
    this.stopFollowingReconnects = catchUpAfterResubscribe(
      this.subscriber,
      this.channel,
      () => this.onResubscribed(),
      (error) => this.logger.warn({ err: errorText(error) }, 'resubscribe failed'),
    );
    this.reconcileTimer = setInterval(() => void this.refreshAll(), this.reconcileEveryMs);
    this.reconcileTimer.unref();
    try {
      for (const ring of await this.store.listRingNames()) await this.refresh(ring);
    } catch (error) {
      this.logger.warn({ err: errorText(error) }, 'could not load rings at start; they load on first use');
    }
  }

  /** The ring's last known state (from memory; no I/O). */
  current(ring: string): RingState | undefined {
    return this.states.get(ring);
  }

  /** Every ring this replica knows of. */
  rings(): RingState[] {
    return [...this.states.values()];
  }

  /**
   * The ring's state for a new watcher: read fresh from Redis, or the cached
   * one while Redis is unreachable. Undefined when the ring does not exist.
   * Throws (UNAVAILABLE) only when Redis is down and nothing is cached.
   */
  async load(ring: string): Promise<RingState | undefined> {
    try {
      await this.refresh(ring, { throwOnError: true });
    } catch (error) {
      const cached = this.states.get(ring);
      if (cached) return cached;
      throw error;
    }
    return this.states.get(ring);
  }

  /** Re-reads the ring in the background (failures are logged, the cache stays). */
  refreshSoon(ring: string): void {
    void this.refresh(ring);
  }

  /** Reads every known ring once (after Redis came back), restoring any it lost. */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.states.keys()].map((ring) => this.refresh(ring)));
  }

  /** Adds a listener for the ring's changes; returns the function that removes it. */
  listen(ring: string, listener: RingListener): () => void {
    let set = this.listeners.get(ring);
    if (!set) this.listeners.set(ring, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(ring);
    };
  }

  /** Takes a state a write on this replica returned, without waiting for the message. */
  accept(state: RingState): void {
    this.update(state);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reconcileTimer);
    this.stopFollowingReconnects?.();
    this.listeners.clear();
    await Promise.allSettled([...this.reading.values()].map((entry) => entry.done));
  }

  private onMessage(channel: string, message: string): void {
    if (channel !== this.channel) return;
    const [ring, epochText] = message.split(' ');
    const epoch = Number(epochText);
    if (!ring || !Number.isSafeInteger(epoch)) return;
    const known = this.states.get(ring);
    // Our own epoch echoed: nothing to read. A lower one means a replica wrote
    // over an older state of Redis: the read finds it and repairs it.
    if (known && known.epoch === epoch) return;
    void this.refresh(ring);
  }

  /** The subscription is live again after a disconnect: messages may have been missed. */
  private onResubscribed(): void {
    if (this.closed) return;
    this.logger.info({ rings: this.states.size }, 'subscription back: re-reading every known ring once');
    void this.refreshAll();
  }

  /** Reads the ring, coalescing: while a read runs, further requests collapse into one more read. */
  private refresh(ring: string, options: { throwOnError?: boolean } = {}): Promise<void> {
    const settle = (done: Promise<void>) =>
      options.throwOnError
        ? done
        : done.catch((error: unknown) => {
            this.logger.warn(
              { ring, err: errorText(error) },
              'could not read ring; keeping its last key set',
            );
          });
    const running = this.reading.get(ring);
    if (running) {
      running.again = true;
      return settle(running.done);
    }
    const entry = { again: false, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        do {
          entry.again = false;
          await this.readOnce(ring);
        } while (entry.again && !this.closed);
      } finally {
        this.reading.delete(ring);
      }
    })();
    this.reading.set(ring, entry);
    return settle(entry.done);
  }

  private async readOnce(ring: string): Promise<void> {
    const state = await this.store.readRing(ring);
    if (state) return this.update(state);
    const cached = this.states.get(ring);
    if (!cached) return;
    // Redis no longer has a ring we served: it lost its data. Every node still
    // holds these keys, so the fleet stays consistent only if they come back.
    const restored = await this.store.restoreRing(cached);
    this.logger.warn(
      { ring, epoch: cached.epoch + 1, restored },
      'ring missing in Redis; restored from memory',
    );
    const after = await this.store.readRing(ring);
    if (after) this.update(after);
  }

  private update(state: RingState): void {
    const ring = state.params.ring;
    const known = this.states.get(ring);
    if (known && known.epoch >= state.epoch) return;
    this.states.set(ring, state);
    for (const listener of this.listeners.get(ring) ?? []) {
      try {
        listener(state);
      } catch (error) {
        this.logger.error({ ring, err: errorText(error) }, 'key-set listener failed');
      }
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
