import type { Redis } from 'ioredis';
import type { StapleStatus } from '@keyfleet/proto';
import { catchUpAfterResubscribe, type Logger } from '@keyfleet/service-kit';
import { stapleStatusOf } from '../records/certificate-record.js';
import type { CertificateStore } from '../store/certificate-store.js';
import type { StoredCertificate } from '../store/stored-certificate.js';

/** A change watchers are told about. */
export type StapleChange =
  | { readonly type: 'updated'; readonly certificate: StoredCertificate }
  | { readonly type: 'removed'; readonly id: string };

export type StapleListener = (change: StapleChange) => void;

export interface StapleHubOptions {
  readonly store: Pick<CertificateStore, 'get' | 'list'>;
  /** A connection of its own: in subscriber mode it can send nothing else. */
  readonly subscriber: Redis;
  readonly changesChannel: string;
  readonly clock: () => number;
  readonly logger: Logger;
  /** How often statuses are re-derived, so a staple passing nextUpdate is announced as EXPIRED. */
  readonly expirySweepMs: number;
  /** A change that takes longer than this to apply is abandoned and caught up by a reload. Default 10000. */
  readonly stepTimeoutMs?: number;
  /**
   * How often the whole registry is re-read and differences announced, so a
   * change lost to pub/sub (at-most-once) is caught up within this. Default 60000.
   */
  readonly reconcileEveryMs?: number;
}

/**
 * This replica's view of the registry: one Redis subscription, a cache of
 * every record, and in-memory fan-out to every WatchStaples stream (and to
 * the scrape-time gauges). Changes are applied in the order they were
 * published. After the subscription drops and returns, the whole registry
 * is reloaded and the differences announced, because pub/sub does not replay
 * what was missed.
 */
export class StapleHub {
  readonly #options: StapleHubOptions;
  readonly #cache = new Map<string, StoredCertificate>();
  readonly #announcedStatus = new Map<string, StapleStatus>();
  readonly #listeners = new Set<StapleListener>();
  #applying: Promise<void> = Promise.resolve();
  #sweep: NodeJS.Timeout | undefined;
  #reconcile: NodeJS.Timeout | undefined;
  #stopFollowingReconnects: (() => void) | undefined;
  #ready = false;
  #subscribed = false;
  #reloadQueued = false;

  constructor(options: StapleHubOptions) {
    this.#options = options;
  }

  /** Subscribes and reads the registry; may be called again after it failed (Redis went away meanwhile). */
  async start(): Promise<void> {
    const { subscriber, changesChannel, logger } = this.#options;
    if (!this.#subscribed) {
      this.#subscribed = true;
      subscriber.on('message', (channel: string, message: string) => {
        if (channel !== changesChannel) return;
        logger.trace({ message }, 'staple change received');
        this.#enqueue(() => this.#applyMessage(message));
      });
      // What was published while the subscription was down is lost: re-read
      // everything once it is live again.
      this.#stopFollowingReconnects = catchUpAfterResubscribe(
        subscriber,
        changesChannel,
        () => this.#requestReload('reconnect'),
        (error) => logger.warn({ err: { message: (error as Error).message } }, 'resubscribe failed'),
      );
    }
    await subscriber.subscribe(changesChannel);
    await this.#reload();
    this.#ready = true;
    this.#sweep = setInterval(() => this.#announceExpiries(), this.#options.expirySweepMs);
    this.#sweep.unref();
    this.#reconcile = setInterval(
      () => this.#requestReload('reconcile'),
      this.#options.reconcileEveryMs ?? defaultReconcileEveryMs,
    );
    this.#reconcile.unref();
    logger.info({ certificates: this.#cache.size }, 'staple hub loaded');
  }

  stop(): void {
    this.#ready = false;
    clearInterval(this.#sweep);
    clearInterval(this.#reconcile);
    this.#stopFollowingReconnects?.();
    this.#listeners.clear();
  }

  /** True once the registry has been read from Redis: the cache can be served. */
  get loaded(): boolean {
    return this.#ready;
  }

  /** Every cached record (the snapshot a new watcher gets). */
  certificates(): StoredCertificate[] {
    return [...this.#cache.values()];
  }

  cached(id: string): StoredCertificate | undefined {
    return this.#cache.get(id);
  }

  /** Adds a listener; the returned function removes it. */
  subscribe(listener: StapleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once every change received so far has been applied (tests, shutdown). */
  settled(): Promise<void> {
    return this.#applying;
  }

  /** Applies one change after those before it; a change that fails or hangs is caught up by a reload. */
  #enqueue(step: () => Promise<void>): void {
    this.#applying = this.#applying
      .then(() => withTimeout(step(), this.#options.stepTimeoutMs ?? defaultStepTimeoutMs))
      .catch((error: unknown) => {
        this.#options.logger.warn(
          { err: { message: (error as Error).message } },
          'staple hub could not apply a change; reloading',
        );
        this.#requestReload('failed change');
      });
  }

  /** At most one reload waits in the queue; it retries until Redis answers. */
  #requestReload(why: 'reconnect' | 'reconcile' | 'failed change'): void {
    if (!this.#ready || this.#reloadQueued) return;
    this.#reloadQueued = true;
    this.#applying = this.#applying.then(async () => {
      this.#reloadQueued = false;
      await this.#reloadUntilDone(why);
    });
  }

  async #applyMessage(message: string): Promise<void> {
    const separator = message.indexOf(':');
    const kind = message.slice(0, separator);
    const id = message.slice(separator + 1);
    if (kind === 'removed') {
      this.#remove(id);
      return;
    }
    const certificate = await this.#options.store.get(id);
    if (certificate) this.#update(certificate);
    else this.#remove(id);
  }

  /** After a reconnect the command connection may come back later than the subscriber: retry. */
  async #reloadUntilDone(why: string): Promise<void> {
    for (let attempt = 0; this.#ready; attempt++) {
      try {
        const changed = await this.#reload();
        // A reconcile that finds something means a change was lost: say so.
        const level = why === 'reconcile' && changed === 0 ? 'debug' : 'info';
        this.#options.logger[level]({ certificates: this.#cache.size, changed, why }, 'staple hub reloaded');
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  /** Re-reads the registry and announces what differs; returns how many records changed. */
  async #reload(): Promise<number> {
    const all = await this.#options.store.list();
    const seen = new Set<string>();
    let changed = 0;
    for (const certificate of all) {
      seen.add(certificate.chain.id);
      const before = this.#cache.get(certificate.chain.id);
      if (!before || fingerprint(before) !== fingerprint(certificate)) {
        this.#update(certificate);
        changed++;
      }
    }
    for (const id of [...this.#cache.keys()]) {
      if (!seen.has(id)) {
        this.#remove(id);
        changed++;
      }
    }
    return changed;
  }

  #update(certificate: StoredCertificate): void {
    const id = certificate.chain.id;
    this.#cache.set(id, certificate);
    this.#announcedStatus.set(id, stapleStatusOf(certificate, this.#options.clock()));
    this.#emit({ type: 'updated', certificate });
  }

  #remove(id: string): void {
    if (!this.#cache.delete(id)) return;
    this.#announcedStatus.delete(id);
    this.#emit({ type: 'removed', id });
  }

  #announceExpiries(): void {
    const nowMs = this.#options.clock();
    for (const [id, certificate] of this.#cache) {
      const status = stapleStatusOf(certificate, nowMs);
      if (this.#announcedStatus.get(id) !== status) {
        this.#announcedStatus.set(id, status);
        this.#emit({ type: 'updated', certificate });
      }
    }
  }

  #emit(change: StapleChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#options.logger.warn({ err: { message: (error as Error).message } }, 'staple listener failed');
      }
    }
  }
}

const defaultReconcileEveryMs = 60_000;

/** One change may not hold up the ones behind it for longer than this. */
const defaultStepTimeoutMs = 10_000;

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a change took over ${ms} ms to apply`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function fingerprint(certificate: StoredCertificate): string {
  const { staple, fetch } = certificate;
  return [
    staple?.thisUpdateMs ?? 0,
    staple?.nextUpdateMs ?? 0,
    fetch.consecutiveFailures,
    fetch.lastAttemptAtMs,
    fetch.lastError,
  ].join('|');
}
