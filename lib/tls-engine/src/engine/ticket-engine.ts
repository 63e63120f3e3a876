import type { Registry } from 'prom-client';
import type { TicketReason, TicketStatus } from '@keyfleet/proto';
import { TicketDecision } from '@keyfleet/proto';
import { createTicketCodec, type TicketCodec } from '../tickets/ticket-codec.js';
import type { TicketAead } from '../tickets/xchacha-aead.js';
import {
  composePolicies,
  enforceLegalDecision,
  type PolicyRingRules,
  type TicketConnection,
  type TicketPolicy,
} from '../decisions/ticket-policy.js';
import { defaultTicketPolicies } from '../decisions/default-policies.js';
import { engineMetrics, type EngineMetrics } from '../metrics/engine-metrics.js';
import type { TicketKeyRing, TicketKeyRingSource } from './ticket-key-ring.js';

export interface TicketEngineOptions {
  /** The ring this engine seals and opens for (bound into every ticket). Required. */
  ring: string;
  /**
   * Where the current key ring comes from (a KeySetProvider, or a static ring). Required.
   * A source with addListener/removeListener (a KeySetProvider) is listened to until
   * close(), which is what keeps its WatchKeySet stream running.
   */
  keys: TicketKeyRingSource & Partial<ListenableKeySource>;
  /** Milliseconds since the epoch. Default Date.now. */
  clock?: () => number;
  /** Decision steps, key-state first. Default defaultTicketPolicies(). */
  policies?: readonly TicketPolicy[];
  /** Metrics registry (or engine metrics already made from one). Default: no metrics. */
  metrics?: Registry | EngineMetrics;
  /** Issue times up to this far in the future are accepted (nodes' clocks differ). Default 30000. */
  maxClockSkewMs?: number;
  /** AEAD implementation. Default: the native port's when it loads, else nodeTicketAead (both byte-identical to @noble/ciphers). */
  aead?: TicketAead;
}

interface ResolvedTicketEngineOptions {
  readonly ring: string;
  readonly keys: TicketKeyRingSource & Partial<ListenableKeySource>;
  readonly clock: () => number;
  readonly policies: readonly TicketPolicy[];
  readonly metrics: EngineMetrics | undefined;
  readonly maxClockSkewMs: number;
  readonly aead: TicketAead | undefined;
}

/** Resolves and checks the options once; throws at start-up on a bad value. */
export function compileTicketEngineOptions(options: TicketEngineOptions): ResolvedTicketEngineOptions {
  if (typeof options.ring !== 'string' || options.ring.length === 0) throw new TypeError('ring is required');
  if (!options.keys || typeof options.keys.current !== 'function')
    throw new TypeError('keys must have current()');
  const maxClockSkewMs = options.maxClockSkewMs ?? 30_000;
  if (!Number.isFinite(maxClockSkewMs) || maxClockSkewMs < 0) {
    throw new RangeError(`maxClockSkewMs must be a non-negative number, got ${maxClockSkewMs}`);
  }
  const policies = options.policies ?? defaultTicketPolicies();
  if (policies.length === 0) throw new RangeError('policies must not be empty');
  const metrics = options.metrics;
  return {
    ring: options.ring,
    keys: options.keys,
    clock: options.clock ?? Date.now,
    policies,
    metrics:
      metrics === undefined ? undefined : 'countDecision' in metrics ? metrics : engineMetrics(metrics),
    maxClockSkewMs,
    aead: options.aead,
  };
}

const NOTHING_BOUND = Object.freeze({});

/** A key source whose updates run only while someone listens (see KeySetProvider). */
export interface ListenableKeySource {
  addListener(listener: (keys: TicketKeyRing) => void): void;
  removeListener(listener: (keys: TicketKeyRing) => void): void;
}

/** What `generate` made. */
export interface GeneratedTicket {
  readonly ticket: Uint8Array;
  readonly keyName: Uint8Array;
  readonly lifetimeHintMs: number;
  readonly epoch: number;
}

/** What `decrypt` found and decided (the seed's status + decision, with a reason). */
export interface TicketDecryptResult {
  readonly status: TicketStatus;
  readonly decision: TicketDecision;
  readonly reason: TicketReason;
  /** Set when the ticket opened (SUCCESS, SUCCESS_RENEW), whatever the decision. */
  readonly session?: Uint8Array;
  readonly appdata?: Uint8Array;
  readonly issuedAtMs?: number;
  /** The key name the ticket carries, when it carried one. */
  readonly keyName?: Uint8Array;
  /** A replacement under the ACTIVE key, with the same issue time, when the decision is USE_RENEW. */
  readonly renewedTicket?: Uint8Array;
  readonly renewedLifetimeHintMs?: number;
  /** Epoch of the key set used; undefined when none was held. */
  readonly epoch?: number;
}

/** generate() when no key is ACTIVE (no key set yet, or only PENDING keys). */
export class NoActiveKeyError extends Error {
  override readonly name = 'NoActiveKeyError';
}

/**
 * The engine's ticket callbacks for one ring: `generate` seals a session
 * under the ACTIVE key, `decrypt` opens a ticket and decides (codec → key
 * state → appdata rules → legality), with metrics. The same code runs in TLS
 * nodes and behind keyless SealTicket/OpenTicket, so both answer alike.
 */
export interface TicketEngine {
  readonly ring: string;
  /**
   * Seals `session` and `appdata`, binding the server name when the ring
   * says so and the client identity when there is one. `issuedAtMs` keeps a
   * renewed session's first issue time. Throws RangeError over a size limit,
   * NoActiveKeyError without an ACTIVE key.
   */
  generate(
    session: Uint8Array,
    appdata: Uint8Array,
    connection?: TicketConnection,
    issuedAtMs?: number,
  ): GeneratedTicket;
  /** Never throws for any ticket bytes. */
  decrypt(ticket: Uint8Array, connection?: TicketConnection): TicketDecryptResult;
  /** Stops listening to the key source (its stream stops when nobody else listens). */
  close(): void;
}

export function createTicketEngine(options: TicketEngineOptions): TicketEngine {
  const resolved = compileTicketEngineOptions(options);
  const { ring, keys, clock, metrics, maxClockSkewMs } = resolved;
  const codec: TicketCodec = createTicketCodec({ ring, ...(resolved.aead ? { aead: resolved.aead } : {}) });
  const decide = composePolicies(resolved.policies);
  const ticketAge = metrics?.ticketAgeSeconds.labels({ ring });
  // The policies' view of the ring, built once per key ring rather than per ticket.
  const noKeysRules: PolicyRingRules = { maxSessionAgeMs: 0, bindServerName: false, maxClockSkewMs };
  let rulesRing: TicketKeyRing | undefined;
  let rules = noKeysRules;
  const rulesFor = (keyRing: TicketKeyRing | undefined): PolicyRingRules => {
    if (!keyRing) return noKeysRules;
    if (keyRing !== rulesRing) {
      rulesRing = keyRing;
      rules = {
        maxSessionAgeMs: keyRing.rules.maxSessionAgeMs,
        bindServerName: keyRing.rules.bindServerName,
        maxClockSkewMs,
      };
    }
    return rules;
  };
  // The engine reads keys.current() on each call; the listener only keeps the source live.
  const keepAlive = () => {};
  keys.addListener?.(keepAlive);

  const seal = (
    keyRing: TicketKeyRing | undefined,
    nowMs: number,
    session: Uint8Array,
    appdata: Uint8Array,
    connection: TicketConnection,
    issuedAtMs: number,
  ): GeneratedTicket => {
    const active = keyRing?.schedule.activeAt(nowMs);
    const aeadKey = active && keyRing?.aeadKey(active.nameHex);
    if (!keyRing || !active || !aeadKey) throw new NoActiveKeyError(`ring "${ring}" has no ACTIVE key`);
    const ticket = codec.sealWith(active, aeadKey, {
      issuedAtMs,
      session,
      appdata,
      serverName: keyRing.rules.bindServerName ? (connection.serverName ?? '').toLowerCase() : undefined,
      clientIdentity: connection.clientIdentity ? connection.clientIdentity : undefined,
    });
    return {
      ticket,
      keyName: active.name,
      lifetimeHintMs: keyRing.rules.ticketLifetimeHintMs,
      epoch: keyRing.epoch,
    };
  };

  return {
    ring,
    close: () => keys.removeListener?.(keepAlive),
    generate(session, appdata, connection = {}, issuedAtMs) {
      const nowMs = clock();
      return seal(keys.current(), nowMs, session, appdata, connection, issuedAtMs ?? nowMs);
    },
    decrypt(ticket, connection = {}) {
      const nowMs = clock();
      const keyRing = keys.current();
      const opened = codec.open(ticket, keyRing, nowMs);
      const payload = opened.payload;
      const verdict = enforceLegalDecision(
        opened.status,
        decide({
          status: opened.status,
          reason: opened.reason,
          keyState: opened.keyState,
          issuedAtMs: payload?.issuedAtMs,
          nowMs,
          // The payload carries the bound serverName and clientIdentity.
          bound: payload ?? NOTHING_BOUND,
          connection,
          ring: rulesFor(keyRing),
          appdata: payload?.appdata,
        }),
      );
      let renewedTicket: Uint8Array | undefined;
      let renewedLifetimeHintMs: number | undefined;
      if (verdict.decision === TicketDecision.USE_RENEW && payload) {
        try {
          const renewed = seal(
            keyRing,
            nowMs,
            payload.session,
            payload.appdata,
            {
              serverName: payload.serverName,
              clientIdentity: payload.clientIdentity,
            },
            payload.issuedAtMs,
          );
          renewedTicket = renewed.ticket;
          renewedLifetimeHintMs = renewed.lifetimeHintMs;
        } catch {
          // No ACTIVE key: resume without a replacement; the next handshake renews.
        }
      }
      if (metrics) {
        // Only names the set holds become labels (see countDecision).
        const knownKey = opened.keyState === undefined ? undefined : opened.keyNameHex;
        metrics.countDecision(ring, knownKey, verdict.decision, verdict.reason);
        if (verdict.illegal) metrics.illegalDecisions.inc({ ring });
        if (payload) ticketAge?.observe(Math.max(0, nowMs - payload.issuedAtMs) / 1000);
      }
      return {
        status: opened.status,
        decision: verdict.decision,
        reason: verdict.reason,
        session: payload?.session,
        appdata: payload?.appdata,
        issuedAtMs: payload?.issuedAtMs,
        keyName: opened.keyName,
        renewedTicket,
        renewedLifetimeHintMs,
        epoch: keyRing?.epoch,
      };
    },
  };
}
