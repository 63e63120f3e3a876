import type { OcspCertStatus } from '@keyfleet/proto';
import type { ValidatedStaple } from '@keyfleet/tls-engine';
import type { ParsedChain } from '../pki/certificate-chain.js';

/** A staple as stored: a validated response and where it came from. */
export interface StoredStaple extends ValidatedStaple {
  readonly fetchedAtMs: number;
  readonly responderUrl: string;
}

export interface StoredFetchState {
  readonly lastAttemptAtMs: number;
  readonly nextAttemptAtMs: number;
  readonly consecutiveFailures: number;
  readonly lastError: string;
}

/** One registered certificate as the store holds it. */
export interface StoredCertificate {
  readonly chain: ParsedChain;
  readonly registeredAtMs: number;
  readonly staple: StoredStaple | undefined;
  readonly fetch: StoredFetchState;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const num = (value: string | undefined) => (value === undefined || value === '' ? 0 : Number(value));

/** Hash fields of a new registration (no staple, no fetch yet). */
export function registrationFields(chain: ParsedChain, registeredAtMs: number): string[] {
  // One field, value pair per line.
  // prettier-ignore
  return [
    'id', chain.id,
    'leafDer', b64(chain.leafDer),
    'issuerDer', b64(chain.issuerDer),
    'subject', chain.subject,
    'issuer', chain.issuer,
    'serialHex', chain.serialHex,
    'notAfterMs', String(chain.notAfterMs),
    'dnsNames', JSON.stringify(chain.dnsNames),
    'ocspUrl', chain.ocspUrl,
    'registeredAtMs', String(registeredAtMs),
    'consecutiveFailures', '0',
  ];
}

/** Hash fields of a staple (thisUpdateMs is also the compare-and-swap key). */
export function stapleFields(staple: StoredStaple): string[] {
  // One field, value pair per line.
  // prettier-ignore
  return [
    'stapleDer', b64(staple.der),
    'certStatus', String(staple.certStatus),
    'thisUpdateMs', String(staple.thisUpdateMs),
    'nextUpdateMs', String(staple.nextUpdateMs),
    'producedAtMs', String(staple.producedAtMs),
    'revokedAtMs', String(staple.revokedAtMs),
    'fetchedAtMs', String(staple.fetchedAtMs),
    'responderUrl', staple.responderUrl,
  ];
}

/** The record from HGETALL, or undefined for a missing or unreadable hash. */
export function decodeStoredCertificate(hash: Record<string, string>): StoredCertificate | undefined {
  if (!hash.id || !hash.leafDer || !hash.issuerDer) return undefined;
  let dnsNames: string[] = [];
  try {
    const parsed: unknown = JSON.parse(hash.dnsNames ?? '[]');
    if (Array.isArray(parsed)) dnsNames = parsed.map(String);
  } catch {
    dnsNames = [];
  }
  return {
    chain: {
      id: hash.id,
      leafDer: new Uint8Array(Buffer.from(hash.leafDer, 'base64')),
      issuerDer: new Uint8Array(Buffer.from(hash.issuerDer, 'base64')),
      subject: hash.subject ?? '',
      issuer: hash.issuer ?? '',
      serialHex: hash.serialHex ?? '',
      notAfterMs: num(hash.notAfterMs),
      dnsNames,
      ocspUrl: hash.ocspUrl ?? '',
    },
    registeredAtMs: num(hash.registeredAtMs),
    staple: hash.stapleDer
      ? {
          der: new Uint8Array(Buffer.from(hash.stapleDer, 'base64')),
          certStatus: num(hash.certStatus) as OcspCertStatus,
          thisUpdateMs: num(hash.thisUpdateMs),
          nextUpdateMs: num(hash.nextUpdateMs),
          producedAtMs: num(hash.producedAtMs),
          revokedAtMs: num(hash.revokedAtMs),
          fetchedAtMs: num(hash.fetchedAtMs),
          responderUrl: hash.responderUrl ?? '',
        }
      : undefined,
    fetch: {
      lastAttemptAtMs: num(hash.lastAttemptAtMs),
      nextAttemptAtMs: num(hash.nextAttemptAtMs),
      consecutiveFailures: num(hash.consecutiveFailures),
      lastError: hash.lastError ?? '',
    },
  };
}
