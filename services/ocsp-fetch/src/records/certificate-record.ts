import { OcspCertStatus, StapleStatus, type CertificateRecord } from '@keyfleet/proto';
import type { StoredCertificate } from '../store/stored-certificate.js';

/**
 * Where a certificate stands at `nowMs`, a pure function of the stored record
 * and the time: a staple past its nextUpdate is EXPIRED (and not served) the
 * moment it passes, without waiting for any write.
 */
export function stapleStatusOf(certificate: StoredCertificate, nowMs: number): StapleStatus {
  if (!certificate.chain.ocspUrl) return StapleStatus.NO_OCSP_URL;
  const staple = certificate.staple;
  if (staple) {
    if (staple.nextUpdateMs <= nowMs) return StapleStatus.EXPIRED;
    switch (staple.certStatus) {
      case OcspCertStatus.GOOD:
        return StapleStatus.GOOD;
      case OcspCertStatus.REVOKED:
        return StapleStatus.REVOKED;
      default:
        return StapleStatus.UNKNOWN;
    }
  }
  return certificate.fetch.consecutiveFailures > 0 ? StapleStatus.FETCH_FAILING : StapleStatus.PENDING;
}

/**
 * Whether a staple is served at `nowMs`: never an expired one, and never an
 * "unknown" one (no longer stored, but a record written before may hold one).
 */
export function isServable(status: StapleStatus): boolean {
  return status === StapleStatus.GOOD || status === StapleStatus.REVOKED;
}

/** The contract's CertificateRecord for a stored certificate at `nowMs`. */
export function toCertificateRecord(certificate: StoredCertificate, nowMs: number): CertificateRecord {
  const status = stapleStatusOf(certificate, nowMs);
  const { chain, staple, fetch } = certificate;
  return {
    id: chain.id,
    subject: chain.subject,
    issuer: chain.issuer,
    serialHex: chain.serialHex,
    notAfterMs: chain.notAfterMs,
    dnsNames: [...chain.dnsNames],
    ocspUrl: chain.ocspUrl,
    status,
    staple:
      staple && isServable(status)
        ? {
            der: Buffer.from(staple.der),
            certStatus: staple.certStatus,
            thisUpdateMs: staple.thisUpdateMs,
            nextUpdateMs: staple.nextUpdateMs,
            producedAtMs: staple.producedAtMs,
            revokedAtMs: staple.revokedAtMs,
            fetchedAtMs: staple.fetchedAtMs,
            responderUrl: staple.responderUrl,
          }
        : undefined,
    fetch: { ...fetch },
    registeredAtMs: certificate.registeredAtMs,
  };
}
