import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { nodeTicketKeys } from '../keys/key-material.js';
import { keyNameHex, keyNameLabel } from '../keys/ticket-key.js';
import type { CompiledAttachOptions } from './attach-options.js';
import type { TicketKeySource } from './key-source.js';
import {
  decisionLabel,
  reasonLabel,
  UNKNOWN_KEY_LABEL,
  type EngineMetrics,
} from '../metrics/engine-metrics.js';
import type { KeySchedule } from '../keys/key-schedule.js';
import {
  defaultContextOf,
  installTicketKeyHook,
  setSessionIdContext,
  setStaticTicketKeys,
  sniContextsOf,
  ticketKeyHookAvailable,
  wrapSniCallback,
  type AnySecureContext,
  type NativeTicketKeyHandler,
} from './ticket-key-hook.js';
import { TicketKeyResponder, TicketKeyResult } from './ticket-key-responder.js';

export type TicketKeyMode = 'hook' | 'static';

export interface InstalledTicketKeys {
  readonly mode: TicketKeyMode;
  detach(): void;
}

const zero16 = new Uint8Array(16);

/**
 * Puts the ring's keys into every SecureContext the server uses (the default
 * one, `addContext` ones, SNICallback ones, and any later `setSecureContext`),
 * together with the ring's session-id context.
 */
export function installServerTicketKeys(
  server: tls.Server,
  keys: TicketKeySource,
  options: CompiledAttachOptions,
  metrics: EngineMetrics,
): InstalledTicketKeys {
  const defaultContext = defaultContextOf(server);
  const hookAvailable = defaultContext !== undefined && ticketKeyHookAvailable(defaultContext);
  const mode: TicketKeyMode = options.ticketHook === 'auto' && hookAvailable ? 'hook' : 'static';
  const responder = new TicketKeyResponder();
  const ring = keys.ring;

  // Opening answers are reused while the schedule and the key's state stay
  // the same: the handshake path then does one map lookup and one counter
  // increment, and hands Node the same (read-only) array each time.
  interface CachedOpen {
    readonly schedule: KeySchedule;
    readonly validFromMs: number;
    readonly validUntilMs: number;
    readonly reply: [number, Uint8Array, Uint8Array];
    readonly counter: { inc(): void };
  }
  const openCache = new Map<string, CachedOpen>();
  const maxCachedNames = 256;
  const open = (schedule: KeySchedule | undefined, name: Buffer, nowMs: number) => {
    const nameHex = name.toString('hex');
    const cached = openCache.get(nameHex);
    if (
      cached &&
      cached.schedule === schedule &&
      nowMs >= cached.validFromMs &&
      nowMs < cached.validUntilMs
    ) {
      cached.counter.inc();
      return cached.reply;
    }
    const answer = responder.open(schedule, name, nowMs);
    const counter = metrics.ticketDecisions.labels({
      ring,
      key: answer.keyName ? keyNameLabel(answer.keyName) : UNKNOWN_KEY_LABEL,
      decision: decisionLabel(answer.decision),
      reason: reasonLabel(answer.reason),
    });
    counter.inc();
    const reply: [number, Uint8Array, Uint8Array] = [answer.result, answer.hmacKey, answer.aesKey];
    // Names the set never held are not cached: a client could send endless ones.
    if (schedule && answer.keyName) {
      if (openCache.size >= maxCachedNames) openCache.clear();
      openCache.set(nameHex, {
        schedule,
        validFromMs: answer.validFromMs,
        validUntilMs: answer.validUntilMs,
        reply,
        counter,
      });
    }
    return reply;
  };

  const handler: NativeTicketKeyHandler = (name, _iv, encrypt) => {
    // A throw here would make OpenSSL fail the handshake; a full handshake
    // (or no ticket) is always the safer answer.
    try {
      const nowMs = options.now();
      const schedule = keys.schedule();
      if (encrypt) {
        const sealed = responder.seal(schedule, nowMs);
        return [sealed.result, sealed.hmacKey, sealed.aesKey, sealed.name, randomBytes(16)];
      }
      return open(schedule, name, nowMs);
    } catch {
      return [TicketKeyResult.NOT_FOUND, zero16, zero16, zero16, zero16];
    }
  };

  let staticKeys: Buffer | undefined;
  const prepared = new WeakSet<object>();
  const prepare = (context: AnySecureContext, force = false) => {
    if (options.sessionIdContext !== undefined) setSessionIdContext(context, options.sessionIdContext);
    if (mode === 'hook') {
      if (prepared.has(context) && !force) return;
      prepared.add(context);
      installTicketKeyHook(context, handler);
    } else if (staticKeys) {
      setStaticTicketKeys(context, staticKeys);
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
    server.setTicketKeys(staticKeys);
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

  const onKeysChanged = () => (mode === 'static' ? applyStatic() : undefined);
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
    detach() {
      clearInterval(refreshTimer);
      keys.removeListener?.(onKeysChanged);
      delete (server as Partial<tls.Server>).addContext;
      delete (server as Partial<tls.Server>).setSecureContext;
      unwrapSni?.();
    },
  };
}
