import { OcspCertStatus, StapleStatus, type CertificateRecord } from '@keyfleet/proto';
import { fetchOcspResponse, type IssuedCertificate, type TestPki } from '@keyfleet/test-support';
import { certificateIdOfPem } from '../src/sync/staple-files.js';

/**
 * A real OCSP response for `leaf`, fetched from the test PKI's `openssl ocsp`
 * responder, wrapped in the CertificateRecord the staple service would stream.
 */
export function fetchStapleRecord(
  pki: TestPki,
  leaf: IssuedCertificate,
  nextUpdateMs: number,
): CertificateRecord {
  const der = fetchOcspResponse(pki, leaf);
  const nowMs = Date.now();
  return {
    id: certificateIdOfPem(leaf.certPem()),
    subject: `CN=${leaf.name}`,
    issuer: 'CN=keyfleet test intermediate',
    serialHex: '',
    notAfterMs: nowMs + 30 * 86_400_000,
    dnsNames: ['localhost'],
    ocspUrl: pki.ocspUrl,
    status: StapleStatus.GOOD,
    staple: {
      der,
      certStatus: OcspCertStatus.GOOD,
      thisUpdateMs: nowMs,
      nextUpdateMs,
      producedAtMs: nowMs,
      revokedAtMs: 0,
      fetchedAtMs: nowMs,
      responderUrl: pki.ocspUrl,
    },
    fetch: undefined,
    registeredAtMs: nowMs,
  };
}
