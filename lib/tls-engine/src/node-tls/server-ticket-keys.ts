import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { nodeTicketKeys } from '../keys/key-material.js';
import { keyNameHex } from '../keys/ticket-key.js';
import type { CompiledAttachOptions, EngineLogger } from './attach-options.js';
import type { TicketKeySource } from './key-source.js';
import type { EngineMetrics } from '../metrics/engine-metrics.js';
import { loadNativePort } from './native-port.js';
import { sessionTicketCallbacks } from './session-ticket-callbacks.js';
import { createTicketKeyHandler } from './ticket-key-handler.js';
import {
  defaultContextOf,
  installTicketKeyHook,
  missingNodeInternals,
  NODE_INTERNALS,
  setSessionIdContext,
  setSessionTimeout,
  setStaticTicketKeys,
  sniContextsOf,
  ticketKeyHookAvailable,
  wrapSniCallback,
  type AnySecureContext,
  type NodeInternal,
} from './ticket-key-hook.js';

export type TicketKeyMode = 'hook' | 'static';
/** 'native': OpenSSL's session-ticket callbacks decide; otherwise Node's key hook alone, and why. */
export type TicketCallbackMode = 'native' | 'off' | 'unavailable';

export interface InstalledTicketKeys {
  readonly mode: TicketKeyMode;
  readonly callbacks: TicketCallbackMode;
  detach(): void;
}

/** Says which Node internals this runtime lacks, once per process, in a log line and a gauge. */
const reported = new Set<NodeInternal>();
function reportMissingInternals(
  missing: readonly NodeInternal[],
  metrics: EngineMetrics,
  logger: EngineLogger,
) {
  for (const internal of NODE_INTERNALS)
    metrics.nodeInternalMissing.set({ internal }, missing.includes(internal) ? 1 : 0);
  for (const internal of missing) {
    if (reported.has(internal)) continue;
    reported.add(internal);
    logger.warn(`Node ${process.version} lacks ${internal}, which the engine relies on: falling back`, {
      internal,
      node: process.version,
    });
  }
}

/**
 * Puts the ring's keys into every SecureContext the server uses (the default
 * one, `addContext` ones, SNICallback ones, and any later `setSecureContext`),
 * together with the ring's session-id context, the ring's ticket lifetime as
 * the session timeout, and (through the native port) OpenSSL's session-ticket
 * callbacks. Each piece falls back on its own when the runtime lacks what it
 * needs, and says so.
 */
export function installServerTicketKeys(
  server: tls.Server,
  keys: TicketKeySource,
  options: CompiledAttachOptions,
  metrics: EngineMetrics,
): InstalledTicketKeys {
  reportMissingInternals(missingNodeInternals(server), metrics, options.logger);
  const defaultContext = defaultContextOf(server);
  const hookAvailable = defaultContext !== undefined && ticketKeyHookAvailable(defaultContext);
  const mode: TicketKeyMode = options.ticketHook === 'auto' && hookAvailable ? 'hook' : 'static';
  const ring = keys.ring;

  const port = options.ticketCallbacks === 'auto' ? loadNativePort() : undefined;
  const callbacks = port?.available
    ? sessionTicketCallbacks({
        keys,
        policies: options.policies,
        metrics,
        now: options.now,
        nodeId: options.nodeId,
        maxClockSkewMs: options.maxClockSkewMs,
        userAppdata: options.appdata,
        logger: options.logger,
      })
    : undefined;
  let callbackMode: TicketCallbackMode = callbacks
    ? 'native'
    : options.ticketCallbacks === 'off'
      ? 'off'
      : 'unavailable';
  const callbacksUnavailable = (reason: string) => {
    callbackMode = 'unavailable';
    metrics.ticketCallbacksFallback.set(1);
    options.logger.warn(
      "OpenSSL's session-ticket callbacks are not installed: Node's key hook decides alone (no appdata, no ABORT/IGNORE, and the ring's max session age and SNI binding are not applied)",
      { ring, reason },
    );
  };
  metrics.ticketCallbacksFallback.set(callbacks ? 0 : 1);
  if (port && !port.available) callbacksUnavailable(port.reason);
  // With the callbacks, they decide and count; the hook only picks keys.
  const handler = createTicketKeyHandler(keys, options.now, metrics, callbackMode !== 'native');

  // The ring's ticket lifetime is OpenSSL's session timeout: the lifetime hint
  // sent with each ticket, and how long a session may be resumed.
  let timeoutSeconds: number | undefined;
  const currentTimeoutSeconds = () => {
    const lifetimeMs = keys.rules?.()?.ticketLifetimeHintMs;
    return lifetimeMs && lifetimeMs > 0 ? Math.max(1, Math.round(lifetimeMs / 1000)) : undefined;
  };

  let staticKeys: Buffer | undefined;
  const prepared = new WeakSet<object>();
  const prepare = (context: AnySecureContext, force = false) => {
    if (options.sessionIdContext !== undefined) setSessionIdContext(context, options.sessionIdContext);
    if (timeoutSeconds !== undefined) setSessionTimeout(context, timeoutSeconds);
    if (mode === 'static' && staticKeys) setStaticTicketKeys(context, staticKeys);
    if (prepared.has(context) && !force) return;
    prepared.add(context);
    if (mode === 'hook') installTicketKeyHook(context, handler);
    if (callbacks && callbackMode === 'native' && port?.available) {
      if (!port.port.installTicketCallbacks(context, callbacks))
        callbacksUnavailable('a context holds no SSL_CTX');
    }
  };
  const prepareAll = () => {
    const current = defaultContextOf(server);
    if (current) prepare(current);
    for (const context of sniContextsOf(server)) prepare(context);
  };

  let refreshTimer: NodeJS.Timeout | undefined;
  let lastStaticName: string | undefined;
  const applyStatic = () => {
    const schedule = keys.schedule();
    if (!schedule) return; // nothing received yet: Node's own random keys stay
    const active = schedule.activeAt(options.now());
    if (active && active.secret.length > 0) {
      const nameHex = keyNameHex(active.name);
      if (nameHex === lastStaticName) return;
      lastStaticName = nameHex;
      staticKeys = nodeTicketKeys(active.name, active.secret);
    } else {
      // No usable key (all revoked): a fresh random key, so no old ticket resumes.
      if (lastStaticName === 'none') return;
      lastStaticName = 'none';
      staticKeys = randomBytes(48);
    }
    try {
      server.setTicketKeys(staticKeys);
    } catch (error) {
      // Only a runtime whose internals moved gets here: say so, never throw from attach.
      options.logger.warn('setTicketKeys failed: this server keeps its own ticket keys', {
        ring,
        error: (error as Error).message,
      });
    }
    prepareAll();
  };

  if (mode === 'static') {
    metrics.ticketHookFallback.set(1);
    options.logger.warn(
      hookAvailable
        ? 'ticket hook disabled by option: using the single-key setTicketKeys API; tickets under retired keys will not resume'
        : "Node's per-ticket key hook is missing in this runtime: using the single-key setTicketKeys API; tickets under retired keys will not resume",
      { ring },
    );
    applyStatic();
    refreshTimer = setInterval(applyStatic, options.staticRefreshMs);
    refreshTimer.unref();
  } else {
    metrics.ticketHookFallback.set(0);
  }
  prepareAll();

  let warnedRules = false;
  const onKeysChanged = () => {
    const nextTimeout = currentTimeoutSeconds();
    if (nextTimeout !== timeoutSeconds) {
      timeoutSeconds = nextTimeout;
      prepareAll();
    }
    const rules = keys.rules?.();
    if (
      callbackMode !== 'native' &&
      !warnedRules &&
      rules &&
      (rules.maxSessionAgeMs > 0 || rules.bindServerName)
    ) {
      warnedRules = true;
      options.logger.warn(
        "the ring's max session age and SNI binding need the session-ticket callbacks: not applied here",
        {
          ring,
        },
      );
    }
    if (mode === 'static') applyStatic();
  };
  onKeysChanged();
  keys.addListener?.(onKeysChanged);

  // Contexts created later must get the same treatment.
  // Own properties shadow the prototype's methods; detach deletes them again.
  server.addContext = function addContext(this: tls.Server, ...args: Parameters<tls.Server['addContext']>) {
    tls.Server.prototype.addContext.apply(this, args);
    prepareAll();
  };
  server.setSecureContext = function setSecureContext(
    this: tls.Server,
    ...args: Parameters<tls.Server['setSecureContext']>
  ) {
    tls.Server.prototype.setSecureContext.apply(this, args);
    // A new default context starts with Node's random keys: reinstall ours.
    const current = defaultContextOf(server);
    if (current) prepare(current, true);
    if (mode === 'static' && staticKeys) server.setTicketKeys(staticKeys);
  };
  const unwrapSni = wrapSniCallback(server, (context) => prepare(context));

  return {
    mode,
    get callbacks() {
      return callbackMode;
    },
    detach() {
      clearInterval(refreshTimer);
      keys.removeListener?.(onKeysChanged);
      delete (server as Partial<tls.Server>).addContext;
      delete (server as Partial<tls.Server>).setSecureContext;
      unwrapSni?.();
    },
  };
}
