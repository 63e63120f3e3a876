import * as pkijs from 'pkijs';
import { ensurePkiEngine } from '@keyfleet/tls-engine';

/** The CertID hash algorithms we send; SHA-1 is what RFC 5019 responders must support. */
export type CertIdHash = 'sha1' | 'sha256';

const webCryptoName: Record<CertIdHash, string> = { sha1: 'SHA-1', sha256: 'SHA-256' };

/** RFC 5019 section 5: a GET when the URL-safe request is at most this long, else a POST. */
export const maxGetEncodedBytes = 255;

/** A built request and the CertID it asks about, which the response must answer exactly. */
export interface OcspRequestForCertificate {
  readonly der: Uint8Array;
  readonly certId: pkijs.CertID;
}

/**
 * An OCSPRequest for one certificate, unsigned and without a nonce: RFC 5019
 * responders serve pre-signed responses and ignore or reject nonces, and a
 * request without one is byte-identical every time, so caches work.
 */
export async function buildOcspRequest(
  leaf: pkijs.Certificate,
  issuer: pkijs.Certificate,
  hash: CertIdHash,
): Promise<OcspRequestForCertificate> {
  const crypto = ensurePkiEngine();
  const request = new pkijs.OCSPRequest();
  await request.createForCertificate(
    leaf,
    { hashAlgorithm: webCryptoName[hash], issuerCertificate: issuer },
    crypto,
  );
  const certId = request.tbsRequest.requestList[0]?.reqCert;
  if (!certId) throw new Error('pkijs built an OCSP request without a CertID');
  return { der: new Uint8Array(request.toSchema(true).toBER(false)), certId };
}

/** The `{url}/{url-encoded base64}` GET form, or undefined when the request is too long for it. */
export function ocspGetUrl(
  responderUrl: string,
  requestDer: Uint8Array,
  maxEncodedBytes = maxGetEncodedBytes,
): string | undefined {
  const encoded = encodeURIComponent(Buffer.from(requestDer).toString('base64'));
  if (encoded.length > maxEncodedBytes) return undefined;
  return `${responderUrl.endsWith('/') ? responderUrl : `${responderUrl}/`}${encoded}`;
}
