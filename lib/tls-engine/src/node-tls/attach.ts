import type tls from 'node:tls';
import { compileAttachOptions, type AttachOptions } from './attach-options.js';
import { engineMetrics } from '../metrics/engine-metrics.js';
import { installOcspStapling } from './ocsp-stapling.js';
import {
  installServerTicketKeys,
  type TicketCallbackMode,
  type TicketKeyMode,
} from './server-ticket-keys.js';

/** What `attach` installed, and how to take it off again. */
export interface AttachedTlsEngine {
  /** 'hook' (per-ticket callback), 'static' (single-key fallback), or 'none' without a key source. */
  readonly ticketKeyMode: TicketKeyMode | 'none';
  /**
   * 'native' when OpenSSL's session-ticket callbacks decide every offered
   * ticket (the native port loaded); 'off' by option; 'unavailable' when the
   * port could not load (the warning says why); 'none' without a key source.
   */
  readonly ticketCallbacks: TicketCallbackMode | 'none';
  /** The session-id context set on every context, undefined when Node's default was kept. */
  readonly sessionIdContext: string | undefined;
  /** Removes the OCSP listener and key listeners; contexts keep the keys they hold. */
  detach(): void;
}

/**
 * Makes a node:tls or node:https server a fleet member: every SecureContext it
 * uses seals tickets under the ring's ACTIVE key and opens them by the shared
 * state table (or, where Node lacks the per-ticket hook, holds the ACTIVE key
 * through the public API); through the native port, OpenSSL's session-ticket
 * callbacks write the engine's appdata into each ticket and decide every
 * offered one with the engine's policies; all contexts share the ring's
 * session-id context and its ticket lifetime; and 'OCSPRequest' is answered
 * from the staple source. Call it right after
 * creating the server, before it accepts connections.
 */
export function attach(server: tls.Server, options: AttachOptions): AttachedTlsEngine {
  const compiled = compileAttachOptions(options);
  const metrics = engineMetrics(compiled.registry);
  const tickets = compiled.keys
    ? installServerTicketKeys(server, compiled.keys, compiled, metrics)
    : undefined;
  const stapling = compiled.staples
    ? installOcspStapling(server, compiled.staples, compiled, metrics)
    : undefined;
  return {
    ticketKeyMode: tickets?.mode ?? 'none',
    get ticketCallbacks() {
      return tickets?.callbacks ?? 'none';
    },
    sessionIdContext: compiled.sessionIdContext,
    detach() {
      tickets?.detach();
      stapling?.detach();
    },
  };
}
