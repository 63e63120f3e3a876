/**
 * A StoredCertificate for pure tests: the chain bytes are placeholders (the
 * SDS framing carries them without parsing), the staple optional.
 */
import { OcspCertStatus } from '@keyfleet/proto';
import type { StoredCertificate } from '../store/stored-certificate.js';

export function storedCertificate(
  staple?: { der: string; nextUpdateMs: number },
  id = 'ab'.repeat(32),
): StoredCertificate {
  return {
    chain: {
      id,
      leafDer: Buffer.from('leaf certificate DER'),
      issuerDer: Buffer.from('issuer certificate DER'),
      subject: 'CN=site',
      issuer: 'CN=ca',
      serialHex: '01',
      notAfterMs: 2e12,
      dnsNames: ['site.test'],
      ocspUrl: 'http://ocsp.test',
    },
    registeredAtMs: 0,
    staple: staple && {
      der: Buffer.from(staple.der),
      certStatus: OcspCertStatus.GOOD,
      thisUpdateMs: 0,
      nextUpdateMs: staple.nextUpdateMs,
      producedAtMs: 0,
      revokedAtMs: 0,
      fetchedAtMs: 0,
      responderUrl: 'http://ocsp.test',
    },
    fetch: { lastAttemptAtMs: 0, nextAttemptAtMs: 0, consecutiveFailures: 0, lastError: '' },
  };
}
