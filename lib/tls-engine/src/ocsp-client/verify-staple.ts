import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

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
  readonly signer?: 'issuer' | 'delegated';
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
  /** Clock skew tolerated on thisUpdate and nextUpdate. Default 300000 (5 min). */
  maxSkewMs?: number;
  /** Larger responses are an error. Default 65536, as the service caps them. */
  maxBytes?: number;
}

const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const EXTENDED_KEY_USAGE = '2.5.29.37';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const hashByOid: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
// pkijs finds Node's WebCrypto (globalThis.crypto, Node 20) by itself.
const engine = pkijs.getCrypto(true);

const equalBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const derOf = (schema: { toBER(sizeOnly?: boolean): ArrayBuffer }) => new Uint8Array(schema.toBER(false));

function hasOcspSigning(certificate: pkijs.Certificate): boolean {
  const eku = certificate.extensions?.find((ext) => ext.extnID === EXTENDED_KEY_USAGE)?.parsedValue as
    pkijs.ExtKeyUsage | undefined;
  return eku?.keyPurposes.includes(OCSP_SIGNING) ?? false;
}

/** Does the CertID name this leaf under this issuer (with the hash the responder chose)? */
function certIdMatches(certId: pkijs.CertID, leaf: pkijs.Certificate, issuer: pkijs.Certificate): boolean {
  const hash = hashByOid[certId.hashAlgorithm.algorithmId];
  if (!hash) return false;
  const nameHash = createHash(hash).update(derOf(issuer.subject.toSchema())).digest();
  const keyHash = createHash(hash)
    .update(issuer.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView)
    .digest();
  return (
    equalBytes(nameHash, certId.issuerNameHash.valueBlock.valueHexView) &&
    equalBytes(keyHash, certId.issuerKeyHash.valueBlock.valueHexView) &&
    equalBytes(leaf.serialNumber.valueBlock.valueHexView, certId.serialNumber.valueBlock.valueHexView)
  );
}

/** Whether the responderID (byName or byKey) names this certificate. */
function responderIdNames(responderId: unknown, certificate: pkijs.Certificate): boolean {
  if (responderId instanceof pkijs.RelativeDistinguishedNames)
    return certificate.subject.isEqual(responderId);
  if (responderId instanceof asn1js.OctetString) {
    const keyHash = createHash('sha1')
      .update(certificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView)
      .digest();
    return equalBytes(keyHash, responderId.valueBlock.valueHexView);
  }
  return false;
}

/**
 * Verifies a stapled OCSP response for `certificateDer` (RFC 6960): the
 * response is successful and basic; it is signed by the issuer itself or by a
 * responder certificate the issuer signed that carries id-kp-OCSPSigning and
 * is valid now; a SingleResponse's CertID names this leaf under this issuer;
 * thisUpdate is not in the future and nextUpdate is present and not past
 * (with skew). Good → accept; revoked or unknown → reject; anything that
 * cannot be trusted or read → error. Never throws.
 */
export async function verifyStaple(input: VerifyStapleInput): Promise<StapleVerification> {
  const nowMs = input.nowMs ?? Date.now();
  const skewMs = input.maxSkewMs ?? 300_000;
  const maxBytes = input.maxBytes ?? 65_536;
  const error = (reason: string): StapleVerification => ({ outcome: 'error', reason });
  if (input.responseDer.length === 0) return error('empty OCSP response');
  if (input.responseDer.length > maxBytes) return error(`OCSP response larger than ${maxBytes} bytes`);

  let basic: pkijs.BasicOCSPResponse;
  let leaf: pkijs.Certificate;
  let issuer: pkijs.Certificate;
  try {
    const response = pkijs.OCSPResponse.fromBER(input.responseDer);
    const status = response.responseStatus.valueBlock.valueDec;
    if (status !== 0) return error(`OCSP responseStatus ${status}`);
    if (!response.responseBytes || response.responseBytes.responseType !== OCSP_BASIC) {
      return error('not a basic OCSP response');
    }
    basic = pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView);
  } catch {
    return error('malformed OCSP response');
  }
  try {
    leaf = pkijs.Certificate.fromBER(input.certificateDer);
    issuer = pkijs.Certificate.fromBER(input.issuerDer);
  } catch {
    return error('malformed certificate or issuer');
  }

  try {
    const single = basic.tbsResponseData.responses.find((candidate) =>
      certIdMatches(candidate.certID, leaf, issuer),
    );
    if (!single) return error('no response for this certificate (CertID does not match)');

    // Who signed: the issuer, or a delegated responder the issuer certified.
    const responderId: unknown = basic.tbsResponseData.responderID;
    let signer: pkijs.Certificate | undefined;
    let signerKind: 'issuer' | 'delegated' = 'issuer';
    if (responderIdNames(responderId, issuer)) {
      signer = issuer;
    } else {
      const candidate = (basic.certs ?? []).find((cert) => responderIdNames(responderId, cert));
      if (!candidate)
        return error('signer is neither the issuer nor a responder certificate in the response');
      if (!candidate.issuer.isEqual(issuer.subject) || !(await candidate.verify(issuer, engine))) {
        return error('responder certificate is not signed by the issuer');
      }
      if (!hasOcspSigning(candidate)) return error('responder certificate lacks id-kp-OCSPSigning');
      const notBefore = candidate.notBefore.value.getTime();
      const notAfter = candidate.notAfter.value.getTime();
      if (nowMs + skewMs < notBefore || nowMs - skewMs > notAfter) {
        return error('responder certificate is not valid now');
      }
      signer = candidate;
      signerKind = 'delegated';
    }
    const signed = await engine.verifyWithPublicKey(
      basic.tbsResponseData.tbsView,
      basic.signature,
      signer.subjectPublicKeyInfo,
      basic.signatureAlgorithm,
    );
    if (!signed) return error('signature does not verify');

    const thisUpdateMs = single.thisUpdate.getTime();
    const nextUpdateMs = single.nextUpdate?.getTime();
    const producedAtMs = basic.tbsResponseData.producedAt.getTime();
    const times = { thisUpdateMs, producedAtMs, signer: signerKind };
    if (thisUpdateMs > nowMs + skewMs) return { ...error('thisUpdate is in the future'), ...times };
    if (nextUpdateMs === undefined) return { ...error('response has no nextUpdate'), ...times };
    if (nextUpdateMs < nowMs - skewMs)
      return { ...error('response expired (nextUpdate passed)'), nextUpdateMs, ...times };

    const tag = (single.certStatus as asn1js.BaseBlock).idBlock.tagNumber;
    const valid = { ...times, nextUpdateMs };
    if (tag === 0) return { outcome: 'accept', reason: 'good', certStatus: 'good', ...valid };
    if (tag === 1)
      return { outcome: 'reject', reason: 'certificate is revoked', certStatus: 'revoked', ...valid };
    return {
      outcome: 'reject',
      reason: 'responder does not know the certificate',
      certStatus: 'unknown',
      ...valid,
    };
  } catch {
    return error('OCSP response could not be verified');
  }
}
