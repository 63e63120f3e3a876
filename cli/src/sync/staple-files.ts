import { createHash, X509Certificate } from 'node:crypto';
import { StapleStatus, type CertificateRecord } from '@keyfleet/proto';

/**
 * A DER OCSPResponse with responseStatus tryLater (RFC 6960 §4.2.1): what an
 * nginx `ssl_stapling_file` holds while no valid staple exists. nginx reads
 * the file only at reload and serves whatever it read for as long as it runs,
 * and refuses to load an empty or missing one, so an expired staple can only
 * be withdrawn by replacing it with a well-formed response that asserts
 * nothing. Clients treat it like no staple.
 */
export const OCSP_TRY_LATER_DER: Buffer = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]);

/**
 * The staple a terminator may serve now: the record's DER while it is before
 * its nextUpdate (a REVOKED staple is served as it is: it is the truth),
 * otherwise undefined. Never an expired staple.
 */
export function servableStaple(record: CertificateRecord, nowMs: number): Buffer | undefined {
  const staple = record.staple;
  if (!staple || staple.der.length === 0) return undefined;
  if (record.status === StapleStatus.EXPIRED || staple.nextUpdateMs <= nowMs) return undefined;
  return Buffer.from(staple.der);
}

/** The certificate id the staple service uses: lower-case hex SHA-256 of the leaf's DER. */
export function certificateIdOfPem(pem: string): string {
  const leaf = new X509Certificate(pem);
  return createHash('sha256').update(leaf.raw).digest('hex');
}

/** The `certificate` metric label and log form of a certificate id. */
export function certificateLabel(id: string): string {
  return id.slice(0, 16);
}
