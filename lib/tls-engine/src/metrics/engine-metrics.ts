import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TicketDecision, TicketReason } from '@keyfleet/proto';
import { keyNameLabel } from '../keys/ticket-key.js';

/** What the metrics read from one ring's key source at scrape time (not on the hot path). */
export interface RingMetricsView {
  /** Epoch of the key set held, undefined before the first. */
  epoch(): number | undefined;
  /** Milliseconds since the last message from the service, undefined before the first. */
  stalenessMs(): number | undefined;
  /** Name of the key this node encrypts with now, undefined when none is ACTIVE. */
  encryptingKeyName(): Uint8Array | undefined;
  /** True while the node issues no tickets because the service has been silent too long. */
  issuingStopped?(): boolean;
  /** How long the service may stay silent before issuing stops (ms), undefined before the first key set. */
  issuingBoundMs?(): number | undefined;
}

/**
 * The engine's metrics (names fixed in the common rules), registered once per
 * registry: every component of a node (ticket engine, key-set provider, staple
 * cache, tls.Server adapter) calls engineMetrics(registry) and shares them.
 * Key names appear only as keyNameLabel (public, first 8 bytes); secrets never.
 */
export interface EngineMetrics {
  readonly ticketDecisions: Counter<'ring' | 'key' | 'decision' | 'reason'>;
  readonly ticketAgeSeconds: Histogram<'ring'>;
  readonly illegalDecisions: Counter<'ring'>;
  readonly staplesServed: Counter<'result'>;
  readonly ticketHookFallback: Gauge;
  /** 1 when the native port's ticket callbacks are not installed (Node's key hook decides alone). */
  readonly ticketCallbacksFallback: Gauge;
  /** Ticket or client-certificate callbacks whose JavaScript threw: the handshake got the safe answer. */
  readonly ticketCallbackErrors: Counter<'ring' | 'callback'>;
  /** Node internals the engine relies on that this runtime lacks (value 1 each). */
  readonly nodeInternalMissing: Gauge<'internal'>;
  /**
   * Counts one decision; the label set of each combination is built once
   * and its child reused. Pass `keyName` only for a key the set holds (else the
   * label is "unknown"), so hostile tickets cannot grow the series count.
   * `keyName` may be the name's lower-case hex, which saves hex-encoding it again.
   */
  countDecision(
    ring: string,
    keyName: Uint8Array | string | undefined,
    decision: TicketDecision,
    reason: TicketReason,
  ): void;
  /** Exports epoch, staleness and encrypting key of a ring until the returned function is called. */
  trackRing(ring: string, view: RingMetricsView): () => void;
}

const registries = new WeakMap<Registry, EngineMetrics>();

export function engineMetrics(registry: Registry): EngineMetrics {
  const existing = registries.get(registry);
  if (existing) return existing;
  const created = createEngineMetrics(registry);
  registries.set(registry, created);
  return created;
}

/** The enum name without its prefix, e.g. "USE_RENEW" (the labels node-tls's attach uses too). */
export function decisionLabel(decision: TicketDecision): string {
  return TicketDecision[decision] ?? String(decision);
}
/** The enum name without its prefix, e.g. "KEY_RETIRED". */
export function reasonLabel(reason: TicketReason): string {
  return TicketReason[reason] ?? String(reason);
}

/** The key label for a name the key set does not hold: client-chosen bytes never become a label. */
export const UNKNOWN_KEY_LABEL = 'unknown';

/** A metric another module (node-tls's attach) may have registered first: reuse it. */
function registered<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

function createEngineMetrics(registry: Registry): EngineMetrics {
  const views = new Map<string, Set<RingMetricsView>>();
  const latestView = (ring: string) => {
    const set = views.get(ring);
    return set ? [...set].at(-1) : undefined;
  };

  const ticketDecisions = registered<Counter<'ring' | 'key' | 'decision' | 'reason'>>(
    registry,
    'keyfleet_engine_ticket_decisions_total',
    () =>
      new Counter({
        name: 'keyfleet_engine_ticket_decisions_total',
        help: 'Ticket decrypt decisions, by ring, key name label, decision and reason.',
        labelNames: ['ring', 'key', 'decision', 'reason'] as const,
        registers: [registry],
      }),
  );
  const ticketAgeSeconds = registered<Histogram<'ring'>>(
    registry,
    'keyfleet_engine_ticket_age_seconds',
    () =>
      new Histogram({
        name: 'keyfleet_engine_ticket_age_seconds',
        help: 'Age of tickets that opened (now minus first issue time).',
        labelNames: ['ring'] as const,
        buckets: [1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600],
        registers: [registry],
      }),
  );
  const illegalDecisions = registered<Counter<'ring'>>(
    registry,
    'keyfleet_engine_illegal_decisions_total',
    () =>
      new Counter({
        name: 'keyfleet_engine_illegal_decisions_total',
        help: 'Policy decisions of USE/USE_RENEW for a ticket that did not open (or no valid decision), turned into ABORT.',
        labelNames: ['ring'] as const,
        registers: [registry],
      }),
  );
  const staplesServed = registered<Counter<'result'>>(
    registry,
    'keyfleet_engine_staples_served_total',
    () =>
      new Counter({
        name: 'keyfleet_engine_staples_served_total',
        help: 'OCSP status requests answered, by result (stapled, none, expired, refused).',
        labelNames: ['result'] as const,
        registers: [registry],
      }),
  );
  const ticketHookFallback = registered<Gauge>(
    registry,
    'keyfleet_engine_ticket_hook_fallback',
    () =>
      new Gauge({
        name: 'keyfleet_engine_ticket_hook_fallback',
        help: "1 when Node's per-ticket key hook is missing and the static ticketKeys API is used.",
        registers: [registry],
      }),
  );
  const ticketCallbacksFallback = registered<Gauge>(
    registry,
    'keyfleet_engine_ticket_callbacks_fallback',
    () =>
      new Gauge({
        name: 'keyfleet_engine_ticket_callbacks_fallback',
        help: "1 when OpenSSL's session-ticket callbacks (the native port) are not installed: no appdata, no ABORT/IGNORE, no max-age or SNI rules in handshakes.",
        registers: [registry],
      }),
  );
  const ticketCallbackErrors = registered<Counter<'ring' | 'callback'>>(
    registry,
    'keyfleet_engine_ticket_callback_errors_total',
    () =>
      new Counter({
        name: 'keyfleet_engine_ticket_callback_errors_total',
        help: 'Callbacks (generate, decrypt, client_certificate) that threw or failed; decrypt then aborts the handshake, generate issues a ticket without appdata.',
        labelNames: ['ring', 'callback'] as const,
        registers: [registry],
      }),
  );
  const nodeInternalMissing = registered<Gauge<'internal'>>(
    registry,
    'keyfleet_engine_node_internal_missing',
    () =>
      new Gauge({
        name: 'keyfleet_engine_node_internal_missing',
        help: 'Undocumented Node internals the engine relies on that this runtime lacks (1 each); the engine fell back.',
        labelNames: ['internal'] as const,
        registers: [registry],
      }),
  );
  new Gauge({
    name: 'keyfleet_engine_key_set_epoch',
    help: 'Epoch of the key set this node holds.',
    labelNames: ['ring'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const ring of views.keys()) {
        const epoch = latestView(ring)?.epoch();
        if (epoch !== undefined) this.set({ ring }, epoch);
      }
    },
  });
  new Gauge({
    name: 'keyfleet_engine_key_set_staleness_seconds',
    help: 'Seconds since the last message (key set or heartbeat) from the ticket-key service.',
    labelNames: ['ring'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const ring of views.keys()) {
        const staleness = latestView(ring)?.stalenessMs();
        if (staleness !== undefined) this.set({ ring }, staleness / 1000);
      }
    },
  });
  new Gauge({
    name: 'keyfleet_engine_ticket_issuing_stopped',
    help: '1 while this node issues no new tickets for the ring: nothing heard from the ticket-key service for its rotation interval plus decrypt window.',
    labelNames: ['ring'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const ring of views.keys()) {
        const view = latestView(ring);
        if (view?.issuingStopped) this.set({ ring }, view.issuingStopped() ? 1 : 0);
      }
    },
  });
  // The staleness alert's threshold is a share of this bound, so it warns
  // well before issuing stops on rings with short and long windows alike.
  new Gauge({
    name: 'keyfleet_engine_ticket_issuing_bound_seconds',
    help: 'Seconds of silence from the ticket-key service after which this node stops issuing tickets for the ring (its rotation interval plus decrypt window).',
    labelNames: ['ring'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const ring of views.keys()) {
        const boundMs = latestView(ring)?.issuingBoundMs?.();
        if (boundMs !== undefined) this.set({ ring }, boundMs / 1000);
      }
    },
  });
  new Gauge({
    name: 'keyfleet_engine_encrypting_key_info',
    help: 'The key this node encrypts new tickets with (value 1), by ring and key name label.',
    labelNames: ['ring', 'key'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const ring of views.keys()) {
        const name = latestView(ring)?.encryptingKeyName();
        if (name) this.set({ ring, key: keyNameLabel(name) }, 1);
      }
    },
  });

  const decisionChildren = new Map<string, Counter.Internal>();
  return {
    ticketDecisions,
    ticketAgeSeconds,
    illegalDecisions,
    staplesServed,
    ticketHookFallback,
    ticketCallbacksFallback,
    ticketCallbackErrors,
    nodeInternalMissing,
    countDecision(ring, keyName, decision, reason) {
      const key =
        keyName === undefined
          ? UNKNOWN_KEY_LABEL
          : typeof keyName === 'string'
            ? keyName.slice(0, 16)
            : keyNameLabel(keyName);
      const cacheKey = `${ring} ${key} ${decision} ${reason}`;
      let child = decisionChildren.get(cacheKey);
      if (!child) {
        child = ticketDecisions.labels({
          ring,
          key,
          decision: decisionLabel(decision),
          reason: reasonLabel(reason),
        });
        // Key names churn with rotation; keep the cache from growing without bound.
        if (decisionChildren.size > 4096) decisionChildren.clear();
        decisionChildren.set(cacheKey, child);
      }
      child.inc();
    },
    trackRing(ring, view) {
      let set = views.get(ring);
      if (!set) views.set(ring, (set = new Set()));
      set.add(view);
      return () => {
        set.delete(view);
        if (set.size === 0) views.delete(ring);
      };
    },
  };
}
