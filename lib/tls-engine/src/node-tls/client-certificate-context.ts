import { createPrivateKey, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import {
  selectClientCertificate,
  type ClientCertificateCandidate,
  type SelectedClientCertificate,
} from '../ocsp-client/client-certificate.js';
import { probeCertificateRequest } from '../ocsp-client/certificate-request.js';
import { loadNativePort, type NativeClientCredentials } from './native-port.js';

export interface ClientCertificateContextOptions {
  /** The identities the client may present; the first whose chain the server accepts is sent. */
  readonly candidates: readonly ClientCertificateCandidate[];
  /** The rest of the client's context (ca, ciphers, minVersion, ...), as for tls.createSecureContext. */
  readonly secureContext?: Omit<tls.SecureContextOptions, 'key' | 'cert' | 'pfx'>;
  /** Told what each handshake chose (undefined: no candidate fits, so none is sent). */
  readonly onSelect?: (selected: SelectedClientCertificate | undefined, acceptableIssuers: Buffer[]) => void;
}

export interface ClientCertificateContext {
  /** Pass as `secureContext` to tls.connect / https.request. */
  readonly secureContext: tls.SecureContext;
  /**
   * 'native': OpenSSL's client-certificate callback chooses inside each
   * handshake, from the CA names the server's CertificateRequest lists (TLS
   * 1.2, and TLS 1.3's certificate_authorities). 'unavailable': the native
   * port did not load (`reason` says why); use connectWithClientCertificate,
   * which falls back to a TLS 1.2 probe.
   */
  readonly mode: 'native' | 'unavailable';
  readonly reason?: string;
}

interface PreparedCandidate {
  readonly candidate: ClientCertificateCandidate;
  readonly credentials: NativeClientCredentials;
}

/** Parses every candidate once, at creation: a bad PEM is an error now, not a failed handshake later. */
function prepareCandidates(candidates: readonly ClientCertificateCandidate[]): PreparedCandidate[] {
  return candidates.map((candidate, index) => {
    const blocks =
      candidate.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new TypeError(`candidates[${index}].chainPem holds no certificate`);
    const chain = blocks.map((block) => new X509Certificate(block));
    const key = createPrivateKey(candidate.key);
    if (!chain[0]!.checkPrivateKey(key)) {
      throw new TypeError(`candidates[${index}]: the key does not match the chain's first certificate`);
    }
    return {
      candidate,
      credentials: {
        cert: chain[0]!.raw,
        key: Buffer.from(key.export({ type: 'pkcs8', format: 'pem' })),
        chain: chain.slice(1).map((certificate) => certificate.raw),
      },
    };
  });
}

/**
 * A client SecureContext that picks its certificate the way OpenSSL's
 * SSL_CTX_set_client_cert_cb lets a client: after the server asked, from the
 * CA names it asked for. The leaf, key and chain go on that one connection.
 */
export function createClientCertificateContext(
  options: ClientCertificateContextOptions,
): ClientCertificateContext {
  const prepared = prepareCandidates(options.candidates);
  const secureContext = tls.createSecureContext(options.secureContext ?? {});
  const port = loadNativePort();
  if (!port.available) return { secureContext, mode: 'unavailable', reason: port.reason };
  const installed = port.port.installClientCertificateCallback(secureContext, (acceptableIssuers) => {
    const selected = selectClientCertificate(options.candidates, acceptableIssuers);
    options.onSelect?.(selected, acceptableIssuers);
    return selected
      ? prepared.find((entry) => entry.candidate === selected.candidate)?.credentials
      : undefined;
  });
  return installed
    ? { secureContext, mode: 'native' }
    : { secureContext, mode: 'unavailable', reason: 'the SecureContext holds no SSL_CTX' };
}

/**
 * tls.connect with the right client certificate. With the native port the
 * choice is made inside the handshake (any TLS version). Without it, a TLS 1.2
 * probe of the server's CertificateRequest decides before connecting, which
 * cannot read a TLS 1.3-only server: then no certificate is sent.
 */
export async function connectWithClientCertificate(
  options: ClientCertificateContextOptions & {
    readonly connect: tls.ConnectionOptions & { host: string; port: number };
  },
): Promise<{ socket: tls.TLSSocket; mode: 'native' | 'probe' }> {
  const context = createClientCertificateContext(options);
  if (context.mode === 'native') {
    return {
      socket: tls.connect({ ...options.connect, secureContext: context.secureContext }),
      mode: 'native',
    };
  }
  const probe = await probeCertificateRequest({
    host: options.connect.host,
    port: options.connect.port,
    ...(options.connect.servername ? { serverName: options.connect.servername } : {}),
  });
  const issuers = probe.kind === 'requested' ? probe.acceptableIssuers : [];
  const selected =
    probe.kind === 'requested' ? selectClientCertificate(options.candidates, issuers) : undefined;
  options.onSelect?.(selected, issuers);
  return {
    socket: tls.connect({
      ...options.secureContext,
      ...options.connect,
      ...(selected?.connectOptions ?? {}),
    }),
    mode: 'probe',
  };
}
