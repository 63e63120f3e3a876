import * as pkijs from 'pkijs';
import { OcspCertStatus } from '@keyfleet/proto';
import {
  defaultMaxResponseBytes,
  defaultSkewMs,
  validateOcspResponse,
  type OcspSignerKind,
} from '../ocsp/validate-response.js';

/**
 * The three answers of OpenSSL's client status callback
 * (SSL_CTX_set_tlsext_status_cb): accept (1), reject (0: a valid response
 * says revoked or unknown), error (-1: the response cannot be trusted or read).
 */
export type StapleOutcome = 'accept' | 'reject' | 'error';

export interface StapleVerification {
  readonly outcome: StapleOutcome;
  /** Why, in words fit for a log line (never response bytes). */
  readonly reason: string;
  readonly certStatus?: 'good' | 'revoked' | 'unknown';
  readonly signer?: OcspSignerKind;
  readonly thisUpdateMs?: number;
  readonly nextUpdateMs?: number;
  readonly producedAtMs?: number;
}

export interface VerifyStapleInput {
  /** The DER OCSPResponse the server stapled. */
  responseDer: Uint8Array;
  /** The server's leaf certificate (DER). */
  certificateDer: Uint8Array;
  /** Its issuer (DER): signs the response itself or certifies the delegated responder. */
  issuerDer: Uint8Array;
  /** Default Date.now(). */
  nowMs?: number;
  /** Clock skew tolerated on thisUpdate and nextUpdate. Default 300000 (5 min, `defaultSkewMs`). */
  maxSkewMs?: number;
  /** Larger responses are an error. Default 65536 (`defaultMaxResponseBytes`), as the service caps them. */
  maxBytes?: number;
}

const certStatusWord: Readonly<Partial<Record<OcspCertStatus, 'good' | 'revoked' | 'unknown'>>> = {
  [OcspCertStatus.GOOD]: 'good',
  [OcspCertStatus.REVOKED]: 'revoked',
  [OcspCertStatus.UNKNOWN]: 'unknown',
};

/**
 * Verifies a stapled OCSP response for `certificateDer` with the same rules
 * the staple service applies before it stores a response
 * (`validateOcspResponse`, RFC 6960): strict DER; a successful basic
 * response; exactly one SingleResponse whose CertID names this leaf under
 * this issuer, with whichever of SHA-1/256/384/512 the responder hashed it
 * (the client did not build the request); signed by the issuer or by a
 * responder certificate the issuer signed that carries id-kp-OCSPSigning and
 * is valid now; thisUpdate not in the future and nextUpdate present and not
 * past (with skew), nextUpdate capped at the signer's notAfter. Good →
 * accept; revoked or unknown → reject; any failure → error, its reason the
 * validator's detail and failure code. Never throws.
 */
export async function verifyStaple(input: VerifyStapleInput): Promise<StapleVerification> {
  const error = (reason: string): StapleVerification => ({ outcome: 'error', reason });
  if (input.responseDer.length === 0) return error('empty OCSP response');
  let leaf: pkijs.Certificate;
  let issuer: pkijs.Certificate;
  try {
    leaf = pkijs.Certificate.fromBER(input.certificateDer);
    issuer = pkijs.Certificate.fromBER(input.issuerDer);
  } catch {
    return error('malformed certificate or issuer');
  }
  try {
    const result = await validateOcspResponse({
      der: input.responseDer,
      certId: { leaf },
      issuer,
      nowMs: input.nowMs ?? Date.now(),
      skewMs: input.maxSkewMs ?? defaultSkewMs,
      maxResponseBytes: input.maxBytes ?? defaultMaxResponseBytes,
      purpose: 'client',
    });
    if (!result.ok) return error(`${result.detail} (${result.reason})`);
    const { staple } = result;
    const certStatus = certStatusWord[staple.certStatus];
    if (!certStatus) return error('OCSP certStatus is not good, revoked or unknown');
    const verified = {
      certStatus,
      signer: result.signer,
      thisUpdateMs: staple.thisUpdateMs,
      nextUpdateMs: staple.nextUpdateMs,
      producedAtMs: staple.producedAtMs,
    };
    if (certStatus === 'good') return { outcome: 'accept', reason: 'good', ...verified };
    return {
      outcome: 'reject',
      reason: certStatus === 'revoked' ? 'certificate is revoked' : 'responder does not know the certificate',
      ...verified,
    };
  } catch {
    return error('OCSP response could not be verified');
  }
}
