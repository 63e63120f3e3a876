import { createHash } from 'node:crypto';

/** A certificate's id across keyfleet: lower-case hex SHA-256 of the leaf's DER (CertificateRecord.id). */
export function certificateId(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The `certificate` metric label: the id's first 16 hex characters. */
export function certificateLabel(id: string): string {
  return id.slice(0, 16);
}
