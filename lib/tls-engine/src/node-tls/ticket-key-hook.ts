/**
 * The one file that touches Node's undocumented TLS internals. Everything
 * here is feature-detected; callers learn from the return values whether a
 * hook took and fall back to public APIs when it did not.
 *
 * What Node 20 has (src/crypto/crypto_context.cc, lib/_tls_wrap.js):
 * - `secureContext.context` is the native SecureContext. Its
 *   `enableTicketKeyCallback()` installs OpenSSL's ticket key callback, which
 *   calls `native.onticketkeycallback(name, iv, enc)` on whichever SSL_CTX the
 *   connection uses at that moment (after SNI: the SNI context). The handler
 *   returns `[result, hmacKey, aesKey, name?, iv?]`; Node reads hmac and a
 *   16-byte AES-128-CBC key whatever the result, plus a 16-byte name and IV
 *   when encrypting. A throw or a malformed array makes OpenSSL fail the
 *   handshake, so the handler given here must never throw.
 * - `native.setSessionIdContext(string)`, `native.setTicketKeys(Buffer)` and
 *   `native.setSessionTimeout(seconds)` (OpenSSL's SSL_CTX_set_timeout, which
 *   is also the ticket lifetime hint).
 * - `native._external`: a V8 External holding the SSL_CTX* (the native port's way in).
 * - `tls.Server` keeps its SNICallback under a symbol described 'snicallback',
 *   `addContext` contexts in `server._contexts`, and the default context at
 *   `server._sharedCreds`.
 *
 * Node 20, 24 and 26 have all of them. `missingNodeInternals` names the ones a
 * runtime lacks, so the engine can say exactly what broke and fall back.
 */
import type tls from 'node:tls';

/** Node's handler signature; the array is what the native side reads. */
export type NativeTicketKeyHandler = (
  name: Buffer,
  iv: Buffer,
  encrypt: boolean,
) => [number, Uint8Array, Uint8Array, Uint8Array?, Uint8Array?];

interface NativeSecureContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: NativeTicketKeyHandler;
  setSessionIdContext?: (id: string) => void;
  setTicketKeys?: (keys: Buffer) => void;
  setSessionTimeout?: (seconds: number) => void;
  _external?: unknown;
}

/** A SecureContext (public wrapper) or its native object, as Node hands them around. */
export type AnySecureContext = tls.SecureContext | object;

function nativeOf(context: AnySecureContext): NativeSecureContext | undefined {
  if (!context || typeof context !== 'object') return undefined;
  const inner = (context as { context?: unknown }).context;
  const native = inner && typeof inner === 'object' ? inner : context;
  return native as NativeSecureContext;
}

/** True when this runtime's native SecureContext has the per-ticket hook. */
export function ticketKeyHookAvailable(context: AnySecureContext): boolean {
  const native = nativeOf(context);
  return typeof native?.enableTicketKeyCallback === 'function';
}

/** Installs `handler` as the per-ticket hook on one context; false when the runtime lacks it. */
export function installTicketKeyHook(context: AnySecureContext, handler: NativeTicketKeyHandler): boolean {
  const native = nativeOf(context);
  if (!native || typeof native.enableTicketKeyCallback !== 'function') return false;
  // The handler must be in place before the callback can fire.
  native.onticketkeycallback = handler;
  native.enableTicketKeyCallback();
  return true;
}

/** Sets the session-id context on one context (max 32 bytes); false when not possible. */
export function setSessionIdContext(context: AnySecureContext, id: string): boolean {
  const native = nativeOf(context);
  if (typeof native?.setSessionIdContext !== 'function') return false;
  native.setSessionIdContext(id);
  return true;
}

/** Sets OpenSSL's session timeout (whole seconds), which is also the ticket lifetime hint; false when not possible. */
export function setSessionTimeout(context: AnySecureContext, seconds: number): boolean {
  const native = nativeOf(context);
  if (typeof native?.setSessionTimeout !== 'function') return false;
  native.setSessionTimeout(seconds);
  return true;
}

/** The internals this file relies on, by the name logs and the metric use. */
export const NODE_INTERNALS = [
  'server._sharedCreds',
  'server._contexts',
  'server[snicallback]',
  'context.enableTicketKeyCallback',
  'context.setSessionIdContext',
  'context.setSessionTimeout',
  'context.setTicketKeys',
  'context._external',
] as const;
export type NodeInternal = (typeof NODE_INTERNALS)[number];

/** Which of NODE_INTERNALS this server (and its default context) lacks. */
export function missingNodeInternals(server: tls.Server): NodeInternal[] {
  const holder = server as unknown as Record<string | symbol, unknown>;
  const context = defaultContextOf(server);
  const native = context ? nativeOf(context) : undefined;
  const present: Record<NodeInternal, boolean> = {
    'server._sharedCreds': context !== undefined && context !== null,
    'server._contexts': Array.isArray(holder._contexts),
    'server[snicallback]': Object.getOwnPropertySymbols(server).some((s) => s.description === 'snicallback'),
    'context.enableTicketKeyCallback': typeof native?.enableTicketKeyCallback === 'function',
    'context.setSessionIdContext': typeof native?.setSessionIdContext === 'function',
    'context.setSessionTimeout': typeof native?.setSessionTimeout === 'function',
    'context.setTicketKeys': typeof native?.setTicketKeys === 'function',
    'context._external': native?._external !== undefined && native._external !== null,
  };
  // Without the default context nothing can be said about its methods: name only what is known missing.
  return NODE_INTERNALS.filter(
    (name) => !present[name] && (native !== undefined || !name.startsWith('context.')),
  );
}

/** The public single-key fallback applied to a context Node gave us natively (SNI contexts). */
export function setStaticTicketKeys(context: AnySecureContext, keys: Buffer): boolean {
  const native = nativeOf(context);
  if (typeof native?.setTicketKeys !== 'function') return false;
  native.setTicketKeys(keys);
  return true;
}

/** The server's default context (what `setSecureContext` replaces). */
export function defaultContextOf(server: tls.Server): AnySecureContext | undefined {
  return (server as unknown as { _sharedCreds?: AnySecureContext })._sharedCreds;
}

/** Contexts added with `server.addContext`, as Node stores them (native objects). */
export function sniContextsOf(server: tls.Server): AnySecureContext[] {
  const contexts = (server as unknown as { _contexts?: [RegExp, AnySecureContext][] })._contexts;
  return Array.isArray(contexts) ? contexts.map(([, context]) => context) : [];
}

type SniCallback = (
  servername: string,
  callback: (error: Error | null, context?: AnySecureContext) => void,
) => void;

/**
 * Wraps the server's own SNICallback (if it has one) so every context it
 * hands out passes through `prepare` first. Returns an undo, or undefined when
 * the server has no SNICallback or Node keeps it somewhere else.
 */
export function wrapSniCallback(
  server: tls.Server,
  prepare: (context: AnySecureContext) => void,
): (() => void) | undefined {
  const symbol = Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback');
  if (!symbol) return undefined;
  const holder = server as unknown as Record<symbol, SniCallback | undefined>;
  const original = holder[symbol];
  if (typeof original !== 'function') return undefined;
  holder[symbol] = (servername, callback) =>
    original.call(server, servername, (error, context) => {
      if (!error && context) prepare(context);
      callback(error, context);
    });
  return () => {
    holder[symbol] = original;
  };
}
