import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { defaultTicketPolicies } from '../decisions/default-policies.js';
import type { TicketPolicy } from '../decisions/ticket-policy.js';
import type { StapleSource } from '../staples/staple-cache.js';
import type { TicketKeySource } from './key-source.js';
import type { UserAppdataSource } from './session-ticket-callbacks.js';
import { sessionIdContextForRing } from './session-id-context.js';

/** The few log calls attach makes; pino, console or a test spy all fit. */
export interface EngineLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Options of `attach`; every field optional, defaults documented on each. */
export interface AttachOptions {
  /** Ticket keys for every SecureContext of the server. Default: none (Node's own per-process keys stay). */
  keys?: TicketKeySource;
  /** Staples for the 'OCSPRequest' event. Default: none (no OCSP listener is added). */
  staples?: StapleSource;
  /**
   * Fail the handshake when a client asks for a staple of a must-staple
   * certificate (TLS feature status_request) and no fresh staple is held.
   * Default false: the handshake goes on without a staple.
   */
  strictMustStaple?: boolean;
  /**
   * The session-id context set on every context (with `keys` only). Default:
   * derived from the key source's ring, so every node of the ring resumes the
   * others' sessions. `false` keeps Node's per-process default (only for tests
   * that show why it matters). 1 to 32 bytes.
   */
  sessionIdContext?: string | false;
  /**
   * 'auto' (default) uses Node's per-ticket hook when the runtime has it and
   * falls back to the public single-key `setTicketKeys` otherwise; 'static'
   * forces the fallback.
   */
  ticketHook?: 'auto' | 'static';
  /** How often the static fallback re-checks which key is ACTIVE. Default 1000 ms. */
  staticRefreshMs?: number;
  /**
   * 'auto' (default) installs OpenSSL's session-ticket callbacks through the
   * native port when it loads, so every offered ticket gets a status, the
   * engine's appdata and a decision from `policies` (ABORT, IGNORE,
   * IGNORE_RENEW, USE, USE_RENEW); without the port Node's key hook decides
   * alone (use, renew or full handshake) and the ring's max session age and
   * SNI binding are not applied. 'off' skips the port.
   */
  ticketCallbacks?: 'auto' | 'off';
  /** Decision steps for the ticket callbacks, key-state first. Default defaultTicketPolicies(). */
  policies?: readonly TicketPolicy[];
  /** Extra appdata sealed into each ticket beside the engine's own (at most about 3.5 KiB). Default none. */
  appdata?: UserAppdataSource;
  /** Written into each ticket's appdata: which node issued it. Default `<hostname>:<pid>`. */
  nodeId?: string;
  /** Issue times up to this far in the future are accepted (nodes' clocks differ). Default 30000. */
  maxClockSkewMs?: number;
  /** The clock every decision reads. Default Date.now. */
  now?: () => number;
  /** Where decisions, staples served and the fallback gauge are recorded. Default: a private registry. */
  registry?: Registry;
  /** Default: one JSON line per warning on stderr. */
  logger?: EngineLogger;
}

export interface CompiledAttachOptions {
  readonly keys: TicketKeySource | undefined;
  readonly staples: StapleSource | undefined;
  readonly strictMustStaple: boolean;
  readonly sessionIdContext: string | undefined;
  readonly ticketHook: 'auto' | 'static';
  readonly staticRefreshMs: number;
  readonly ticketCallbacks: 'auto' | 'off';
  readonly policies: readonly TicketPolicy[];
  readonly appdata: UserAppdataSource | undefined;
  readonly nodeId: string;
  readonly maxClockSkewMs: number;
  readonly now: () => number;
  readonly registry: Registry;
  readonly logger: EngineLogger;
}

const stderrLogger: EngineLogger = {
  warn: (message, fields) =>
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', name: 'tls-engine', msg: message, ...fields })}\n`,
    ),
};

/** Resolves defaults once and throws on a bad value, at start-up rather than at the first handshake. */
export function compileAttachOptions(options: AttachOptions): CompiledAttachOptions {
  const ticketHook = options.ticketHook ?? 'auto';
  if (ticketHook !== 'auto' && ticketHook !== 'static') {
    throw new Error(`attach: ticketHook must be 'auto' or 'static', got ${String(ticketHook)}`);
  }
  const staticRefreshMs = options.staticRefreshMs ?? 1000;
  if (!Number.isFinite(staticRefreshMs) || staticRefreshMs < 10) {
    throw new Error(`attach: staticRefreshMs must be at least 10, got ${staticRefreshMs}`);
  }
  const ticketCallbacks = options.ticketCallbacks ?? 'auto';
  if (ticketCallbacks !== 'auto' && ticketCallbacks !== 'off') {
    throw new Error(`attach: ticketCallbacks must be 'auto' or 'off', got ${String(ticketCallbacks)}`);
  }
  const policies = options.policies ?? defaultTicketPolicies();
  if (policies.length === 0) throw new Error('attach: policies must not be empty');
  const maxClockSkewMs = options.maxClockSkewMs ?? 30_000;
  if (!Number.isFinite(maxClockSkewMs) || maxClockSkewMs < 0) {
    throw new Error(`attach: maxClockSkewMs must be a non-negative number, got ${maxClockSkewMs}`);
  }
  const nodeId = options.nodeId ?? `${hostname()}:${process.pid}`;
  if (Buffer.byteLength(nodeId) > 255) throw new Error('attach: nodeId must be at most 255 bytes');
  let sessionIdContext: string | undefined;
  if (options.sessionIdContext === false) sessionIdContext = undefined;
  else if (typeof options.sessionIdContext === 'string') sessionIdContext = options.sessionIdContext;
  else if (options.keys) sessionIdContext = sessionIdContextForRing(options.keys.ring);
  if (sessionIdContext !== undefined) {
    const bytes = Buffer.byteLength(sessionIdContext);
    if (bytes === 0 || bytes > 32) {
      throw new Error(`attach: sessionIdContext must be 1 to 32 bytes, got ${bytes}`);
    }
  }
  return {
    keys: options.keys,
    staples: options.staples,
    strictMustStaple: options.strictMustStaple ?? false,
    sessionIdContext,
    ticketHook,
    staticRefreshMs,
    ticketCallbacks,
    policies,
    appdata: options.appdata,
    nodeId,
    maxClockSkewMs,
    now: options.now ?? Date.now,
    registry: options.registry ?? new Registry(),
    logger: options.logger ?? stderrLogger,
  };
}
