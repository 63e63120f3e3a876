import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type { StapleStatus } from '@keyfleet/proto';
import {
  OcspCertStatus,
  type CertificateRecord,
  type WatchStaplesRequest,
  type WatchStaplesResponse,
} from '@keyfleet/proto';
import { startWatchLoop, type WatchLoop, type WatchLoopOptions } from '../client/watch-loop.js';
import { StapleCache, type CachedStaple, type StapleLookup, type StapleSource } from './staple-cache.js';

/** The one call the provider makes; StapleServiceClient from @keyfleet/proto has it. */
export interface WatchStaplesClient {
  watchStaples(request: WatchStaplesRequest): ClientReadableStream<WatchStaplesResponse>;
}

export interface WatchStaplesProviderOptions {
  client: WatchStaplesClient;
  /** The node's stable name (WatchStaplesRequest.node_id). Required. */
  nodeId: string;
  /** Certificate ids to follow. Default: every registered certificate. */
  certificateIds?: readonly string[];
  /** Default 0: the service's default heartbeat. */
  heartbeatIntervalMs?: number;
  /** Reconnect tuning passed to the watch loop (backoff, idle timeout). */
  watch?: Pick<WatchLoopOptions<WatchStaplesResponse>, 'initialBackoffMs' | 'maxBackoffMs' | 'idleTimeoutMs'>;
  /** Told when the stream drops (for logs); never given staple bytes. */
  onDisconnect?(error: ServiceError | Error | undefined, nextAttemptInMs: number): void;
}

const certStatusNames: Record<number, CachedStaple['certStatus']> = {
  [OcspCertStatus.GOOD]: 'good',
  [OcspCertStatus.REVOKED]: 'revoked',
  [OcspCertStatus.UNKNOWN]: 'unknown',
};

/** The staple a record carries, in the cache's shape; undefined when it carries none. */
export function cachedStapleOf(record: CertificateRecord): CachedStaple | undefined {
  const staple = record.staple;
  if (!staple || staple.der.length === 0) return undefined;
  return {
    der: staple.der,
    thisUpdateMs: staple.thisUpdateMs,
    nextUpdateMs: staple.nextUpdateMs,
    certStatus: certStatusNames[staple.certStatus] ?? 'unspecified',
  };
}

/**
 * Follows WatchStaples into a StapleCache, and serves lookups from it. The
 * stream runs only while someone listens (the first addListener opens it, the
 * last removeListener closes it), so a provider nobody uses costs nothing. The
 * cache survives a dropped stream: staples keep being served until their own
 * nextUpdate, and the next stream's snapshot replaces them.
 */
export class WatchStaplesProvider implements StapleSource {
  readonly cache = new StapleCache();
  private readonly listeners = new Set<() => void>();
  private loop: WatchLoop | undefined;
  private readonly unsubscribeCache: () => void;
  private snapshotReceived = false;
  private readonly statusById = new Map<string, StapleStatus>();

  constructor(private readonly options: WatchStaplesProviderOptions) {
    if (!options.nodeId) throw new Error('WatchStaplesProvider: nodeId is required');
    this.unsubscribeCache = this.cache.onChange(() => {
      for (const listener of [...this.listeners]) listener();
    });
  }

  /** True once a stream delivered its snapshot: the node then staples from its first handshake. */
  get synced(): boolean {
    return this.snapshotReceived;
  }

  lookup(certificateId: string, nowMs: number): StapleLookup {
    return this.cache.lookup(certificateId, nowMs);
  }

  /**
   * Where the service says a certificate stands (PENDING until its first
   * fetch); undefined when it is not registered or no snapshot arrived yet.
   */
  statusOf(certificateId: string): StapleStatus | undefined {
    return this.statusById.get(certificateId);
  }

  addListener(listener: () => void): void {
    this.listeners.add(listener);
    if (!this.loop) this.start();
  }

  removeListener(listener: () => void): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stop();
  }

  /** Stops the stream for good (listeners stay registered but hear nothing more). */
  close(): void {
    this.stop();
    this.unsubscribeCache();
  }

  private start(): void {
    const request: WatchStaplesRequest = {
      ids: [...(this.options.certificateIds ?? [])],
      nodeId: this.options.nodeId,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 0,
    };
    this.loop = startWatchLoop<WatchStaplesResponse>({
      ...this.options.watch,
      open: () => this.options.client.watchStaples(request),
      onMessage: (message) => this.apply(message),
      onDisconnect: (error, nextAttemptInMs) => this.options.onDisconnect?.(error, nextAttemptInMs),
    });
  }

  private stop(): void {
    this.loop?.stop();
    this.loop = undefined;
  }

  private apply(message: WatchStaplesResponse): void {
    if (message.snapshot) {
      const entries: [string, CachedStaple][] = [];
      this.statusById.clear();
      for (const record of message.snapshot.certificates) {
        this.statusById.set(record.id, record.status);
        const staple = cachedStapleOf(record);
        if (staple) entries.push([record.id, staple]);
      }
      this.cache.replaceAll(entries);
      this.snapshotReceived = true;
    } else if (message.updated) {
      this.statusById.set(message.updated.id, message.updated.status);
      this.cache.set(message.updated.id, cachedStapleOf(message.updated));
    } else if (message.removedId) {
      this.statusById.delete(message.removedId);
      this.cache.set(message.removedId, undefined);
    }
  }
}
