/**
 * Loads the native port (lib/tls-engine/native/keyfleet_tls.cc) for the
 * running Node and routes its callbacks to the JavaScript handlers of each
 * context. The port is optional: when its build for this Node's ABI is
 * missing, fails to load, or fails the self-check, `loadNativePort` says why
 * and callers fall back to Node's ticket-key hook alone.
 *
 * The port calls three functions for the whole process; each call names the
 * context's id, which this module maps to the handlers registered for it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import tls from 'node:tls';
import { hostNameOfServerNameExtension } from './server-name-extension.js';

/** OpenSSL's SSL_TICKET_* statuses, as the decrypt callback receives them. */
export const OpenSslTicketStatus = { EMPTY: 3, NO_DECRYPT: 4, SUCCESS: 5, SUCCESS_RENEW: 6 } as const;
/** OpenSSL's SSL_TICKET_RETURN_* decisions, as the decrypt callback returns them. */
export const OpenSslTicketReturn = { ABORT: 0, IGNORE: 1, IGNORE_RENEW: 2, USE: 3, USE_RENEW: 4 } as const;

/** What the generate callback knows when OpenSSL is about to seal a ticket. */
export interface GenerateFacts {
  readonly serverName: string | undefined;
  /** SSL_version: 0x0303 for TLS 1.2, 0x0304 for TLS 1.3. */
  readonly protocolVersion: number;
  /** The appdata the session already carries (a resumed session being re-ticketed). */
  readonly existingAppdata: Buffer | undefined;
  /** SHA-256 of the client's certificate, when it sent one. */
  readonly peerFingerprint: Buffer | undefined;
}

/** What the decrypt callback knows when a client offers a ticket. */
export interface DecryptFacts {
  readonly status: number;
  /** The 16-byte key name of the ticket, when it was long enough to carry one. */
  readonly keyName: Buffer | undefined;
  readonly appdata: Buffer | undefined;
  /** The SNI of the ClientHello offering the ticket, lower-case. */
  readonly serverName: string | undefined;
  readonly protocolVersion: number;
  /** SSL_SESSION_get_time / get_timeout, in seconds, when the ticket opened. */
  readonly sessionTimeSeconds: number | undefined;
  readonly sessionTimeoutSeconds: number | undefined;
  /** SHA-256 of the client certificate the session was established with. */
  readonly peerFingerprint: Buffer | undefined;
}

export interface ServerTicketHandlers {
  /** Appdata to attach to the session (at most 4096 bytes), or undefined for none. */
  generate(facts: GenerateFacts): Uint8Array | undefined;
  /** One of OpenSslTicketReturn. */
  decrypt(facts: DecryptFacts): number;
}

/** A client certificate for one handshake: DER leaf, PEM private key, DER intermediates. */
export interface NativeClientCredentials {
  readonly cert: Uint8Array;
  readonly key: Uint8Array;
  readonly chain: readonly Uint8Array[];
}

/** Picks credentials from the DER CA names the server's CertificateRequest listed (empty: any). */
export type ClientCertificateHandler = (acceptableIssuers: Buffer[]) => NativeClientCredentials | undefined;

interface NativeAddon {
  setHandlers(
    generate: (id: number, serverName?: string, version?: number, appdata?: Buffer, peer?: Buffer) => unknown,
    decrypt: (
      id: number,
      status: number,
      keyName?: Buffer,
      appdata?: Buffer,
      serverName?: string,
      serverNameExtension?: Buffer,
      version?: number,
      sessionTime?: number,
      sessionTimeout?: number,
      peer?: Buffer,
    ) => unknown,
    clientCertificate: (id: number, issuers: Buffer[]) => unknown,
  ): void;
  installTicketCallbacks(external: unknown, id: number): boolean;
  installClientCertificateCallback(external: unknown, id: number): boolean;
  contextTimeout(external: unknown): number;
  failures(): { generate: number; decrypt: number; clientCertificate: number };
  readonly openssl: string;
}

/** The loaded port: install callbacks on a context, read its failure counts. */
export interface NativePort {
  readonly addonPath: string;
  readonly openssl: string;
  /** Installs the ticket callbacks on a SecureContext (public or native); false when it holds no SSL_CTX. */
  installTicketCallbacks(context: object, handlers: ServerTicketHandlers): boolean;
  /** Installs the client-certificate callback on a client SecureContext; false when not possible. */
  installClientCertificateCallback(context: object, handler: ClientCertificateHandler): boolean;
  /** Calls whose JavaScript threw past its handler, or answered with the wrong kind of value. */
  failures(): { generate: number; decrypt: number; clientCertificate: number };
}

export type NativePortStatus =
  | { readonly available: true; readonly port: NativePort }
  | { readonly available: false; readonly reason: string };

/** Where the build script puts the addon for this Node (scripts/build-native.mjs). */
export function nativeAddonPath(): string {
  const abi = `node-abi${process.versions.modules}-${process.platform}-${process.arch}`;
  return fileURLToPath(new URL(`../../native/prebuilt/${abi}/keyfleet_tls.node`, import.meta.url));
}

/** `secureContext.context._external` (or the native object's own): a V8 External holding the SSL_CTX*. */
function externalOf(context: object): unknown {
  const inner = (context as { context?: unknown }).context;
  const native = inner && typeof inner === 'object' ? inner : context;
  return (native as { _external?: unknown })._external;
}

function nativeContextOf(context: object): { setSessionTimeout?: (seconds: number) => void } {
  const inner = (context as { context?: unknown }).context;
  return inner && typeof inner === 'object' ? inner : context;
}

let loaded: NativePortStatus | undefined;

/**
 * Loads the port once per process. `KEYFLEET_NATIVE_PORT=off` skips it (the
 * fallback on purpose). Never throws: a missing build, a load error or a
 * failed self-check is `{ available: false, reason }`.
 */
export function loadNativePort(): NativePortStatus {
  loaded ??= tryLoad();
  return loaded;
}

function tryLoad(): NativePortStatus {
  if (process.env.KEYFLEET_NATIVE_PORT === 'off') {
    return { available: false, reason: 'KEYFLEET_NATIVE_PORT=off' };
  }
  const addonPath = nativeAddonPath();
  if (!existsSync(addonPath)) {
    return {
      available: false,
      reason: `no build for Node ${process.version} (ABI ${process.versions.modules}) at ${addonPath}; run node scripts/build-native.mjs`,
    };
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (error) {
    return { available: false, reason: `loading ${addonPath} failed: ${(error as Error).message}` };
  }
  // Self-check: `_external` must be the context's SSL_CTX. A timeout set
  // through Node's own API must read back through the port.
  try {
    const probe = tls.createSecureContext();
    const native = nativeContextOf(probe);
    const external = externalOf(probe);
    if (typeof native.setSessionTimeout !== 'function' || external === undefined) {
      return { available: false, reason: "this Node's SecureContext has no _external or setSessionTimeout" };
    }
    native.setSessionTimeout(4243);
    const read = addon.contextTimeout(external);
    if (read !== 4243) {
      return { available: false, reason: `_external does not hold the SSL_CTX (timeout read back ${read})` };
    }
  } catch (error) {
    return { available: false, reason: `self-check failed: ${(error as Error).message}` };
  }
  return { available: true, port: createPort(addon, addonPath) };
}

function createPort(addon: NativeAddon, addonPath: string): NativePort {
  const servers = new Map<number, ServerTicketHandlers>();
  const clients = new Map<number, ClientCertificateHandler>();
  // Ids are per context object: installing twice on one context keeps its id.
  const ids = new WeakMap<object, number>();
  let nextId = 1;
  // When a context is collected, its handlers go too.
  const forget = new FinalizationRegistry<number>((id) => {
    servers.delete(id);
    clients.delete(id);
  });
  const idOf = (context: object) => {
    let id = ids.get(context);
    if (id === undefined) {
      id = nextId++;
      ids.set(context, id);
      forget.register(context, id);
    }
    return id;
  };

  // A context whose handlers are gone gets OpenSSL's own default answer.
  addon.setHandlers(
    (id, serverName, version, appdata, peer) =>
      servers.get(id)?.generate({
        serverName,
        protocolVersion: version ?? 0,
        existingAppdata: appdata,
        peerFingerprint: peer,
      }),
    (
      id,
      status,
      keyName,
      appdata,
      serverName,
      serverNameExtension,
      version,
      sessionTime,
      sessionTimeout,
      peer,
    ) => {
      const handlers = servers.get(id);
      if (!handlers) {
        if (status === OpenSslTicketStatus.SUCCESS) return OpenSslTicketReturn.USE;
        if (status === OpenSslTicketStatus.SUCCESS_RENEW) return OpenSslTicketReturn.USE_RENEW;
        return OpenSslTicketReturn.IGNORE_RENEW;
      }
      return handlers.decrypt({
        status,
        keyName,
        appdata,
        serverName: serverName ?? hostNameOfServerNameExtension(serverNameExtension),
        protocolVersion: version ?? 0,
        sessionTimeSeconds: sessionTime,
        sessionTimeoutSeconds: sessionTimeout,
        peerFingerprint: peer,
      });
    },
    (id, issuers) => clients.get(id)?.(issuers),
  );

  const install = (
    context: object,
    register: (id: number) => void,
    call: (external: unknown, id: number) => boolean,
  ) => {
    const native = (context as { context?: unknown }).context;
    const key = native && typeof native === 'object' ? native : context;
    const external = externalOf(context);
    if (external === undefined) return false;
    const id = idOf(key);
    register(id);
    return call(external, id);
  };

  return {
    addonPath,
    openssl: addon.openssl,
    installTicketCallbacks: (context, handlers) =>
      install(
        context,
        (id) => servers.set(id, handlers),
        (external, id) => addon.installTicketCallbacks(external, id),
      ),
    installClientCertificateCallback: (context, handler) =>
      install(
        context,
        (id) => clients.set(id, handler),
        (external, id) => addon.installClientCertificateCallback(external, id),
      ),
    failures: () => addon.failures(),
  };
}
