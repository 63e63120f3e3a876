import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { KeySet, TicketKeyServiceClient, WatchKeySetResponse } from '@keyfleet/proto';
import { keyNameHex } from '../keys/ticket-key.js';
import type { KeySchedule } from '../keys/key-schedule.js';
import { startWatchLoop, type WatchLoop } from '../client/watch-loop.js';
import { engineMetrics, type EngineMetrics } from '../metrics/engine-metrics.js';
import {
  ticketKeyRingFromKeySet,
  type RingRules,
  type TicketKeyRing,
  type TicketKeyRingSource,
} from '../engine/ticket-key-ring.js';

/** The two calls the provider makes on the ticket-key service. */
export type KeySetServiceClient = Pick<TicketKeyServiceClient, 'watchKeySet' | 'ackKeySet'>;

export interface KeySetProviderOptions {
  /** The ring to follow. Required. */
  ring: string;
  /** The service client; without one the provider is fed only through applyKeySet. */
  client?: KeySetServiceClient;
  /** The node's name for WatchKeySet and AckKeySet (1–128 printable ASCII). Default defaultNodeId(): unique per process. */
  nodeId?: string;
  /** Milliseconds since the epoch. Default Date.now. */
  clock?: () => number;
  /** Heartbeat interval asked of the server; 0 takes the server's default (5000). Default 0. */
  heartbeatIntervalMs?: number;
  /** First reconnect delay, doubled per failure with full jitter. Default 200. */
  initialBackoffMs?: number;
  /** Default 10000. */
  maxBackoffMs?: number;
  /** A stream silent this long is reopened. Default 15000 (three missed 5 s heartbeats). */
  idleTimeoutMs?: number;
  /** Deadline for each AckKeySet call. Default 5000. */
  ackTimeoutMs?: number;
  /** Exports epoch, staleness and the encrypting key. Default: no metrics. */
  metrics?: Registry | EngineMetrics;
  /** Where problems go (a rejected key set, a dropped stream, a failed ack). Default: ignored. */
  onProblem?: (problem: string, error?: Error) => void;
  /** Injected for tests; default Math.random. */
  random?: () => number;
}

interface ResolvedKeySetProviderOptions {
  readonly ring: string;
  readonly client: KeySetServiceClient | undefined;
  readonly nodeId: string;
  readonly clock: () => number;
  readonly heartbeatIntervalMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly idleTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly metrics: EngineMetrics | undefined;
  readonly onProblem: (problem: string, error?: Error) => void;
  readonly random: () => number;
}

/**
 * A node id unique to this process: the host name (cut to fit) and 8 random
 * hex digits. Processes sharing a host name (containers of one pod, several
 * workers on one machine) must not share an id: acks and coverage count per
 * stream, and a shared id would let one process speak for another.
 */
export function defaultNodeId(): string {
  const host =
    hostname()
      .replace(/[^\x21-\x7e]/g, '_')
      .slice(0, 100) || 'node';
  return `${host}-${randomBytes(4).toString('hex')}`;
}

/** Resolves and checks the options once; throws at start-up on a bad value. */
export function compileKeySetProviderOptions(options: KeySetProviderOptions): ResolvedKeySetProviderOptions {
  if (!options.ring) throw new TypeError('ring is required');
  const nodeId = options.nodeId ?? defaultNodeId();
  if (!/^[\x20-\x7e]{1,128}$/.test(nodeId))
    throw new RangeError('nodeId must be 1 to 128 printable ASCII characters');
  const positive = (name: string, value: number) => {
    if (!Number.isFinite(value) || value <= 0)
      throw new RangeError(`${name} must be a positive number, got ${value}`);
    return value;
  };
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 0;
  if (heartbeatIntervalMs !== 0 && (heartbeatIntervalMs < 100 || heartbeatIntervalMs > 60_000)) {
    throw new RangeError('heartbeatIntervalMs must be 0 or between 100 and 60000');
  }
  const metrics = options.metrics;
  return {
    ring: options.ring,
    client: options.client,
    nodeId,
    clock: options.clock ?? Date.now,
    heartbeatIntervalMs,
    initialBackoffMs: positive('initialBackoffMs', options.initialBackoffMs ?? 200),
    maxBackoffMs: positive('maxBackoffMs', options.maxBackoffMs ?? 10_000),
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs ?? 15_000),
    ackTimeoutMs: positive('ackTimeoutMs', options.ackTimeoutMs ?? 5000),
    metrics:
      metrics === undefined ? undefined : 'countDecision' in metrics ? metrics : engineMetrics(metrics),
    onProblem: options.onProblem ?? (() => {}),
    random: options.random ?? Math.random,
  };
}

export type KeySetListener = (keys: TicketKeyRing) => void;

/**
 * A ring's key set on a node, following WatchKeySet: the last good set stays
 * in memory (a node cut off from the service keeps serving from it until its
 * keys expire, and its staleness metric says so), the stream reconnects with
 * backoff and jitter, every applied epoch is acknowledged, and listeners hear
 * of each new set. Like grpc-js certificate providers, the stream runs only
 * while at least one listener is registered; `applyKeySet` feeds a set by
 * hand (static setups, tests).
 *
 * Which sets are applied: the first; then any with a higher epoch. A lower
 * epoch (a lagging replica) is ignored — unless it shares no key with the set
 * held, which only happens when the ring was recreated. Sets that cannot be
 * used (wrong sizes, no secrets, another ring) are reported and ignored. A
 * heartbeat naming a newer epoch than the one held means the stream missed a
 * set: it is reopened, and the new stream starts with the full current set.
 *
 * A node cut off from the service stops issuing: once nothing has been heard
 * for the ring's rotation interval plus its decrypt window, the set served
 * ends issuing (no key is ACTIVE, so no new tickets), while tickets already
 * issued still open for one more decrypt window. The rest of the fleet has
 * rotated, and may have revoked this node's key, since; a node that kept
 * sealing under it would hand out tickets nobody else opens, or under a key
 * the operator meant to end. The next message from the service restores it.
 * Only a provider with a client does this: a set fed by hand never goes stale.
 *
 * It serves both the ticket engine (`current()`) and node-tls's `attach`
 * (`ring`, `schedule()`, listeners).
 */
export class KeySetProvider implements TicketKeyRingSource {
  private readonly options: ResolvedKeySetProviderOptions;
  private readonly listeners = new Set<KeySetListener>();
  private keys: TicketKeyRing | undefined;
  /** `keys`, or `keys` with issuing ended while the service has been silent too long. */
  private served: TicketKeyRing | undefined;
  private lastMessageAtMs: number | undefined;
  private loop: WatchLoop | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private readonly untrack: (() => void) | undefined;

  constructor(options: KeySetProviderOptions) {
    this.options = compileKeySetProviderOptions(options);
    const { metrics, ring, clock } = this.options;
    this.untrack = metrics?.trackRing(ring, {
      epoch: () => this.keys?.epoch,
      stalenessMs: () => this.stalenessMs(),
      encryptingKeyName: () => this.served?.schedule.activeAt(clock())?.name,
      issuingStopped: () => this.issuingStopped,
      issuingBoundMs: () => this.issuingBoundMs(),
    });
  }

  get ring(): string {
    return this.options.ring;
  }

  current(): TicketKeyRing | undefined {
    return this.served;
  }

  /** The current schedule: what node-tls's TicketKeySource (attach) reads on each handshake. */
  schedule(): KeySchedule | undefined {
    return this.served?.schedule;
  }

  /** True while the service has been silent past the bound and no new tickets are issued. */
  get issuingStopped(): boolean {
    return this.served !== this.keys;
  }

  /** How long the service may stay silent before this node stops issuing: rotation interval + decrypt window. */
  issuingBoundMs(): number | undefined {
    const rules = this.keys?.rules;
    return rules && rules.rotationIntervalMs + rules.decryptWindowMs;
  }

  /** The ring's rules from the key set held (node-tls applies lifetime, max age and SNI binding). */
  rules(): RingRules | undefined {
    return this.keys?.rules;
  }

  /** Epoch of the key set held. */
  epoch(): number | undefined {
    return this.keys?.epoch;
  }

  /** Milliseconds since the last message from the service (or applyKeySet); undefined before the first. */
  stalenessMs(): number | undefined {
    return this.lastMessageAtMs === undefined
      ? undefined
      : Math.max(0, this.options.clock() - this.lastMessageAtMs);
  }

  /** True while the WatchKeySet stream is wanted (someone listens and a client is set). */
  get watching(): boolean {
    return this.loop !== undefined;
  }

  /** Applies a key set; returns whether it became the current one. Never throws for a bad set. */
  applyKeySet(keySet: KeySet): boolean {
    this.heard();
    if (keySet.ring !== this.options.ring) {
      this.options.onProblem(`ignored a key set for ring "${keySet.ring}", following "${this.options.ring}"`);
      return false;
    }
    const held = this.keys;
    if (held && keySet.epoch <= held.epoch) {
      const reset =
        keySet.epoch < held.epoch && !keySet.keys.some((key) => held.schedule.find(keyNameHex(key.name)));
      if (!reset) {
        // The service is there and holds nothing newer: the set held is current again.
        if (this.issuingStopped) {
          this.resumeIssuing();
          this.notify();
        }
        return false;
      }
      this.options.onProblem(`ring "${keySet.ring}" was recreated: epoch ${held.epoch} → ${keySet.epoch}`);
    }
    let next: TicketKeyRing;
    try {
      next = ticketKeyRingFromKeySet(keySet, held);
    } catch (error) {
      this.options.onProblem(`ignored epoch ${keySet.epoch} of ring "${keySet.ring}"`, error as Error);
      return false;
    }
    if (this.issuingStopped) this.resumeIssuing();
    this.keys = next;
    this.served = next;
    this.armSilenceTimer();
    this.acknowledge(next.epoch);
    this.notify();
    return true;
  }

  private notify(): void {
    const served = this.served;
    if (!served) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(served);
      } catch (error) {
        this.options.onProblem('a key-set listener threw', error as Error);
      }
    }
  }

  /** Records a message from the service and restarts the silence countdown. */
  private heard(): void {
    this.lastMessageAtMs = this.options.clock();
    this.armSilenceTimer();
  }

  private armSilenceTimer(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
    const boundMs = this.issuingBoundMs();
    if (!this.loop || boundMs === undefined || this.lastMessageAtMs === undefined) return;
    const endsAtMs = this.lastMessageAtMs + boundMs;
    this.silenceTimer = setTimeout(
      () => this.stopIssuing(endsAtMs),
      Math.max(0, endsAtMs - this.options.clock()),
    );
    this.silenceTimer.unref();
  }

  private stopIssuing(endsAtMs: number): void {
    const keys = this.keys;
    if (!keys || this.issuingStopped) return;
    this.served = { ...keys, schedule: keys.schedule.withIssuingEndedAt(endsAtMs) };
    this.options.onProblem(
      `ring "${this.options.ring}": nothing from the ticket-key service for ${Math.round(
        (this.issuingBoundMs() ?? 0) / 1000,
      )} s (rotation interval + decrypt window): no new tickets until it returns; issued ones open until their keys expire`,
    );
    this.notify();
  }

  /** Serves the held set again; the caller tells the listeners. */
  private resumeIssuing(): void {
    this.served = this.keys;
    this.options.onProblem(`ring "${this.options.ring}": the service is back, issuing again`);
  }

  /** Registers a listener (called at once with the current set, if any) and starts the stream. */
  addListener(listener: KeySetListener): void {
    this.listeners.add(listener);
    if (this.keys) listener(this.keys);
    if (!this.loop && this.options.client) {
      this.loop = this.startStream(this.options.client);
      this.armSilenceTimer();
    }
  }

  /** Removes a listener; the stream stops with the last one. */
  removeListener(listener: KeySetListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stopStream();
  }

  /** Stops the stream and the metrics; the last set stays readable. */
  close(): void {
    this.listeners.clear();
    this.stopStream();
    this.untrack?.();
  }

  private stopStream(): void {
    this.loop?.stop();
    this.loop = undefined;
    clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
  }

  private startStream(client: KeySetServiceClient): WatchLoop {
    const { ring, nodeId, heartbeatIntervalMs } = this.options;
    let stream: ClientReadableStream<WatchKeySetResponse> | undefined;
    return startWatchLoop<WatchKeySetResponse>({
      open: () => (stream = client.watchKeySet({ ring, nodeId, heartbeatIntervalMs })),
      onMessage: (message) => {
        if (message.keySet) {
          this.applyKeySet(message.keySet);
          return;
        }
        this.heard();
        // A heartbeat names the epoch the server holds. Newer than ours means this stream missed
        // a key set: reopen it, and the new stream starts with the full current set.
        const serverEpoch = message.heartbeat?.epoch ?? 0;
        if (this.keys && serverEpoch > this.keys.epoch) {
          this.options.onProblem(
            `WatchKeySet for "${ring}" is behind (server epoch ${serverEpoch}, held ${this.keys.epoch}); reopening`,
          );
          stream?.cancel();
        } else if (this.issuingStopped) {
          this.resumeIssuing();
          this.notify();
        }
      },
      onDisconnect: (error, nextAttemptInMs) =>
        this.options.onProblem(
          `WatchKeySet for "${ring}" ended; reconnecting in ${nextAttemptInMs} ms`,
          error,
        ),
      initialBackoffMs: this.options.initialBackoffMs,
      maxBackoffMs: this.options.maxBackoffMs,
      idleTimeoutMs: this.options.idleTimeoutMs,
      random: this.options.random,
    });
  }

  private acknowledge(epoch: number): void {
    const client = this.options.client;
    if (!client) return;
    const { ring, nodeId, ackTimeoutMs } = this.options;
    client.ackKeySet(
      { ring, nodeId, epoch },
      new Metadata(),
      { deadline: Date.now() + ackTimeoutMs },
      (error) => {
        if (error) this.options.onProblem(`AckKeySet epoch ${epoch} for "${ring}" failed`, error);
      },
    );
  }
}
