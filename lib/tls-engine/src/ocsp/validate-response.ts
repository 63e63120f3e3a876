import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OcspCertStatus } from '@keyfleet/proto';
import { certIdFor, certIdHashOf, type CertIdHashName } from './cert-id.js';
import { parseDerStrict } from './der.js';
import { signatureOver } from './signature-check.js';
import { FetchResult, fetchFailure, type FetchFailure } from './fetch-result.js';

const oidBasicResponse = '1.3.6.1.5.5.7.48.1.1';
const oidExtKeyUsage = '2.5.29.37';
const oidOcspSigning = '1.3.6.1.5.5.7.3.9';

/** Default response size cap: the largest staple the contract carries (staples.proto). */
export const defaultMaxResponseBytes = 65_536;
/** Default clock skew tolerated on thisUpdate and nextUpdate. */
export const defaultSkewMs = 5 * 60_000;

/**
 * A certificate named by whatever CertID hash the responder chose: what a TLS
 * client has, since it did not build the request the stapled response answers.
 */
export interface AnyHashCertId {
  /** The leaf; its issuer is the input's `issuer`. */
  readonly leaf: pkijs.Certificate;
}

/** What a response is checked against. Everything is passed in, so the rules are tested without I/O. */
export interface OcspValidationInput {
  /** The body exactly as received. */
  readonly der: Uint8Array;
  /**
   * Which certificate the response must answer: the exact CertID we asked
   * with (its hash algorithm included), or `{ leaf }` for "this leaf under
   * `issuer`, hashed with SHA-1/256/384/512, whichever the response uses".
   */
  readonly certId: pkijs.CertID | AnyHashCertId;
  /** The registered leaf's issuer: it signs, or it issued the delegated responder that signs. */
  readonly issuer: pkijs.Certificate;
  readonly nowMs: number;
  readonly skewMs: number;
  readonly maxResponseBytes: number;
  /**
   * `store` (default): may this response be stored and stapled? Then
   * nextUpdate must be after `nowMs` (no skew: a staple that has passed it is
   * never handed out) and certStatus unknown is a failure
   * (`cert_status_unknown`): browsers treat a stapled "unknown" as a hard
   * failure, so the last good staple stays. `client`: what a TLS client
   * checks about a staple it was handed: nextUpdate within `skewMs`, and
   * an unknown status is returned for the caller to reject.
   */
  readonly purpose?: 'store' | 'client';
}

/** A response that passed every rule: what a node may staple. */
export interface ValidatedStaple {
  readonly der: Uint8Array;
  readonly certStatus: OcspCertStatus;
  readonly thisUpdateMs: number;
  /** The response's nextUpdate, capped at the signer certificate's notAfter. */
  readonly nextUpdateMs: number;
  readonly producedAtMs: number;
  /** Set when certStatus is REVOKED, else 0. */
  readonly revokedAtMs: number;
}

/** Who signed a valid response: the issuer itself or a delegated responder (RFC 6960 4.2.2.2). */
export type OcspSignerKind = 'issuer' | 'delegated';

export type OcspValidationResult =
  { readonly ok: true; readonly staple: ValidatedStaple; readonly signer: OcspSignerKind } | FetchFailure;

/** RFC 6960 4.2.1 responseStatus values other than successful(0). */
const failedStatus: Readonly<Record<number, [Exclude<FetchResult, FetchResult.Ok>, string]>> = {
  1: [FetchResult.MalformedRequest, 'responseStatus malformedRequest'],
  2: [FetchResult.InternalError, 'responseStatus internalError'],
  3: [FetchResult.TryLater, 'responseStatus tryLater'],
  5: [FetchResult.SigRequired, 'responseStatus sigRequired'],
  6: [FetchResult.Unauthorized, 'responseStatus unauthorized'],
};

function sameBytes(a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array): boolean {
  return Buffer.from(a instanceof ArrayBuffer ? new Uint8Array(a) : a).equals(
    Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b),
  );
}

/** ResponderID (RFC 6960 4.2.2.3): byName, or byKey = SHA-1 of the subjectPublicKey bits. */
function matchesResponderId(certificate: pkijs.Certificate, responderId: unknown): boolean {
  if (responderId instanceof pkijs.RelativeDistinguishedNames)
    return certificate.subject.isEqual(responderId);
  if (responderId instanceof asn1js.OctetString) {
    const keyHash = createHash('sha1')
      .update(certificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView)
      .digest();
    return sameBytes(keyHash, responderId.valueBlock.valueHexView);
  }
  return false;
}

function hasOcspSigning(certificate: pkijs.Certificate): boolean {
  const extension = certificate.extensions?.find((e) => e.extnID === oidExtKeyUsage);
  const usage = extension?.parsedValue as pkijs.ExtKeyUsage | undefined;
  return usage?.keyPurposes.includes(oidOcspSigning) ?? false;
}

/**
 * A signature in its one canonical encoding: no unused bits in the BIT
 * STRING, and for ECDSA an Ecdsa-Sig-Value in strict DER (SEQUENCE of two
 * INTEGERs, exact lengths). The verifier would accept some other encodings
 * of the same signature; a staple that is not byte-for-byte what was signed
 * is refused.
 */
function canonicalSignature(value: asn1js.BitString, algorithm: pkijs.AlgorithmIdentifier): boolean {
  if (value.valueBlock.unusedBits !== 0) return false;
  if (!algorithm.algorithmId.startsWith('1.2.840.10045.4.')) return true;
  const parsed = parseDerStrict(value.valueBlock.valueHexView);
  return (
    parsed instanceof asn1js.Sequence &&
    parsed.valueBlock.value.length === 2 &&
    parsed.valueBlock.value.every((part) => part instanceof asn1js.Integer)
  );
}

async function signatureVerifies(
  basic: pkijs.BasicOCSPResponse,
  signer: pkijs.Certificate,
): Promise<boolean> {
  if (!canonicalSignature(basic.signature, basic.signatureAlgorithm)) return false;
  // Unsupported or mangled algorithm parameters count as a wrong signature.
  return signatureOver(basic.tbsResponseData.tbsView, basic.signature, signer, basic.signatureAlgorithm);
}

/**
 * Whether `issuer` signed `certificate`, memoised on the exact DER of both: a
 * responder certificate is the same in every response for weeks, and checking
 * its signature each time would double the public-key work per fetch.
 */
const issuedByCache = new Map<string, boolean>();
const issuedByCacheLimit = 1024;

async function issuedBy(certificate: pkijs.Certificate, issuer: pkijs.Certificate): Promise<boolean> {
  if (!certificate.issuer.isEqual(issuer.subject)) return false;
  if (!canonicalSignature(certificate.signatureValue, certificate.signatureAlgorithm)) return false;
  // Everything the signature check reads: the signed bytes, the algorithm,
  // the signature, and the issuer's key.
  const key = createHash('sha256')
    .update(certificate.tbsView)
    .update(new Uint8Array(certificate.signatureAlgorithm.toSchema().toBER(false)))
    .update(certificate.signatureValue.valueBlock.valueHexView)
    .update(new Uint8Array(issuer.subjectPublicKeyInfo.toSchema().toBER(false)))
    .digest('hex');
  const known = issuedByCache.get(key);
  if (known !== undefined) return known;
  const verified = await signatureOver(
    certificate.tbsView,
    certificate.signatureValue,
    issuer,
    certificate.signatureAlgorithm,
  );
  if (issuedByCache.size >= issuedByCacheLimit) issuedByCache.clear();
  issuedByCache.set(key, verified);
  return verified;
}

/**
 * Whether a SingleResponse's CertID names the certificate we check. With an
 * exact CertID the hash algorithm must be the one we asked with; with a leaf,
 * the expected CertID is built for the hash the response used (once per hash).
 */
function certIdMatcher(
  expected: OcspValidationInput['certId'],
  issuer: pkijs.Certificate,
): (certId: pkijs.CertID) => boolean {
  if (expected instanceof pkijs.CertID) return (certId) => certId.isEqual(expected);
  const byHash = new Map<CertIdHashName, pkijs.CertID>();
  return (certId) => {
    const hash = certIdHashOf(certId);
    if (!hash) return false;
    let built = byHash.get(hash);
    if (!built) {
      built = certIdFor(expected.leaf, issuer, hash);
      byHash.set(hash, built);
    }
    return certId.isEqual(built);
  };
}

/**
 * Finds who signed the response and checks that it may: the issuer itself, or
 * a delegated responder certificate carried in the response, issued (signature
 * checked) by the issuer, carrying id-kp-OCSPSigning and valid now (RFC 6960
 * 4.2.2.2). Returns the signer, or the failure.
 */
async function authorizedSigner(
  basic: pkijs.BasicOCSPResponse,
  input: OcspValidationInput,
): Promise<{ ok: true; signer: pkijs.Certificate } | FetchFailure> {
  const responderId: unknown = basic.tbsResponseData.responderID;
  if (matchesResponderId(input.issuer, responderId)) {
    return (await signatureVerifies(basic, input.issuer))
      ? { ok: true, signer: input.issuer }
      : fetchFailure(FetchResult.BadSignature, "signature does not verify with the issuer's key");
  }
  const candidates = (basic.certs ?? []).filter((c) => matchesResponderId(c, responderId));
  if (candidates.length === 0) {
    return fetchFailure(
      FetchResult.UnauthorizedSigner,
      'signed neither by the issuer nor by a responder certificate included in the response',
    );
  }
  let firstProblem: FetchFailure | undefined;
  for (const candidate of candidates) {
    const problem = !(await issuedBy(candidate, input.issuer))
      ? fetchFailure(FetchResult.UnauthorizedSigner, 'responder certificate is not issued by the issuer')
      : !hasOcspSigning(candidate)
        ? fetchFailure(FetchResult.UnauthorizedSigner, 'responder certificate lacks id-kp-OCSPSigning')
        : candidate.notBefore.value.getTime() > input.nowMs + input.skewMs ||
            candidate.notAfter.value.getTime() < input.nowMs - input.skewMs
          ? fetchFailure(FetchResult.UnauthorizedSigner, 'responder certificate is not valid now')
          : !(await signatureVerifies(basic, candidate))
            ? fetchFailure(FetchResult.BadSignature, "signature does not verify with the responder's key")
            : undefined;
    if (!problem) return { ok: true, signer: candidate };
    firstProblem ??= problem;
  }
  return firstProblem!;
}

function certStatusOf(
  single: pkijs.SingleResponse,
): { status: OcspCertStatus; revokedAtMs: number } | undefined {
  const choice = single.certStatus as asn1js.BaseBlock & {
    idBlock: { tagClass: number; tagNumber: number };
    valueBlock: { value?: unknown[] };
  };
  if (choice?.idBlock?.tagClass !== 3) return undefined;
  switch (choice.idBlock.tagNumber) {
    case 0:
      return { status: OcspCertStatus.GOOD, revokedAtMs: 0 };
    case 1: {
      const time = choice.valueBlock.value?.[0];
      if (!(time instanceof asn1js.GeneralizedTime)) return undefined;
      return { status: OcspCertStatus.REVOKED, revokedAtMs: time.toDate().getTime() };
    }
    case 2:
      return { status: OcspCertStatus.UNKNOWN, revokedAtMs: 0 };
    default:
      return undefined;
  }
}

/**
 * Decides whether an OCSP response may be stapled for (or, on a client,
 * trusted about) the certificate (RFC 6960 sections 3.2 and 4.2.2, RFC 5019): size within the
 * cap; responseStatus successful; a basic response; exactly one
 * SingleResponse answering our CertID with the hash algorithm we asked with
 * (or, given a leaf, with whichever of SHA-1/256/384/512 the response uses);
 * an authorized signer; thisUpdate not in the future (with `skewMs` of
 * tolerance) and nextUpdate present and in the future (a client allows
 * `skewMs`); validity capped at the signer's notAfter; for storing, a status
 * of good or revoked (unknown is a failure). Never throws: anything unexpected in the bytes is a
 * failure with a reason, which is also the fetch metric's label.
 */
export async function validateOcspResponse(input: OcspValidationInput): Promise<OcspValidationResult> {
  if (input.der.byteLength > input.maxResponseBytes) {
    return fetchFailure(
      FetchResult.TooLarge,
      `response is ${input.der.byteLength} bytes, over ${input.maxResponseBytes}`,
    );
  }
  let response: pkijs.OCSPResponse;
  let basic: pkijs.BasicOCSPResponse;
  try {
    const outer = parseDerStrict(input.der);
    if (!outer) return fetchFailure(FetchResult.Malformed, 'body is not one DER value');
    response = new pkijs.OCSPResponse({ schema: outer });
  } catch {
    return fetchFailure(FetchResult.Malformed, 'body is not an OCSPResponse');
  }
  const statusValue = response.responseStatus.valueBlock.valueDec;
  if (statusValue !== 0) {
    const known = failedStatus[statusValue];
    return known
      ? fetchFailure(...known)
      : fetchFailure(FetchResult.Malformed, `responseStatus ${statusValue} is not defined`);
  }
  if (!response.responseBytes)
    return fetchFailure(FetchResult.Malformed, 'successful response without responseBytes');
  if (response.responseBytes.responseType !== oidBasicResponse) {
    return fetchFailure(
      FetchResult.UnsupportedResponseType,
      `responseType ${response.responseBytes.responseType} is not id-pkix-ocsp-basic`,
    );
  }
  try {
    const inner = parseDerStrict(response.responseBytes.response.valueBlock.valueHexView);
    if (!inner) return fetchFailure(FetchResult.Malformed, 'BasicOCSPResponse is not one DER value');
    basic = new pkijs.BasicOCSPResponse({ schema: inner });
  } catch {
    return fetchFailure(FetchResult.Malformed, 'responseBytes do not hold a BasicOCSPResponse');
  }

  let matching: pkijs.SingleResponse[];
  try {
    const answersOurs = certIdMatcher(input.certId, input.issuer);
    matching = basic.tbsResponseData.responses.filter((single) => answersOurs(single.certID));
  } catch {
    return fetchFailure(FetchResult.Malformed, 'a SingleResponse has a malformed CertID');
  }
  if (matching.length !== 1) {
    return fetchFailure(
      FetchResult.CertIdMismatch,
      matching.length === 0
        ? 'no SingleResponse answers the requested CertID'
        : `${matching.length} SingleResponses answer the requested CertID`,
    );
  }
  const single = matching[0]!;
  const status = certStatusOf(single);
  if (!status) return fetchFailure(FetchResult.Malformed, 'certStatus is not good, revoked or unknown');

  // The response's own times first: cheap, and the most telling reason when
  // a clock is off (a signer certificate would look "not valid now" too).
  const thisUpdateMs = single.thisUpdate.getTime();
  const producedAtMs = basic.tbsResponseData.producedAt.getTime();
  if (!Number.isFinite(thisUpdateMs) || !Number.isFinite(producedAtMs)) {
    return fetchFailure(FetchResult.Malformed, 'thisUpdate or producedAt is not a valid time');
  }
  if (thisUpdateMs > input.nowMs + input.skewMs) {
    return fetchFailure(
      FetchResult.NotYetValid,
      `thisUpdate ${new Date(thisUpdateMs).toISOString()} is in the future`,
    );
  }
  if (!single.nextUpdate) return fetchFailure(FetchResult.NoNextUpdate, 'the response has no nextUpdate');
  const responseNextUpdateMs = single.nextUpdate.getTime();
  if (!Number.isFinite(responseNextUpdateMs) || responseNextUpdateMs <= thisUpdateMs) {
    return fetchFailure(FetchResult.Malformed, 'nextUpdate is not after thisUpdate');
  }
  const store = (input.purpose ?? 'store') === 'store';
  // The latest acceptable nextUpdate: strictly after now when storing.
  const notAfterMs = store ? input.nowMs : input.nowMs - input.skewMs;
  if (store ? responseNextUpdateMs <= notAfterMs : responseNextUpdateMs < notAfterMs) {
    return fetchFailure(
      FetchResult.Expired,
      `nextUpdate ${new Date(responseNextUpdateMs).toISOString()} has passed`,
    );
  }

  const signer = await authorizedSigner(basic, input);
  if (!signer.ok) return signer;
  const signerNotAfterMs = signer.signer.notAfter.value.getTime();
  const nextUpdateMs = Math.min(responseNextUpdateMs, signerNotAfterMs);
  if (store ? nextUpdateMs <= notAfterMs : nextUpdateMs < notAfterMs) {
    return fetchFailure(
      FetchResult.Expired,
      `the signer certificate expired ${new Date(signerNotAfterMs).toISOString()}`,
    );
  }
  if (store && status.status === OcspCertStatus.UNKNOWN) {
    return fetchFailure(FetchResult.CertStatusUnknown, 'the responder answered certStatus unknown');
  }
  return {
    ok: true,
    signer: signer.signer === input.issuer ? 'issuer' : 'delegated',
    staple: {
      der: input.der,
      certStatus: status.status,
      thisUpdateMs,
      nextUpdateMs,
      producedAtMs,
      revokedAtMs: status.revokedAtMs,
    },
  };
}
