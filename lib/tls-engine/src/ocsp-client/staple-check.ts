import tls from 'node:tls';
import { isMustStaple } from '../staples/must-staple.js';
import { verifyStaple, type StapleVerification } from './verify-staple.js';

/**
 * soft-fail: only a valid response that says revoked/unknown stops the
 * connection; no staple or an unverifiable one lets it through (unless the
 * certificate is must-staple). hard-fail: only a valid "good" staple lets it
 * through.
 */
export type StapleCheckMode = 'soft-fail' | 'hard-fail';

export interface StapleCheckOptions {
  /** Default 'hard-fail'. */
  mode?: StapleCheckMode;
  /** Default Date.now. */
  now?: () => number;
  /** Clock skew tolerated on the response's times. Default 300000. */
  maxSkewMs?: number;
  /** The leaf's issuer (DER) when the server does not send it and the trust store does not supply it. */
  issuerDer?: Uint8Array;
}

export interface StapleCheckResult {
  /** Whether the server stapled anything. */
  readonly stapled: boolean;
  /** The verifier's answer; undefined when nothing was stapled or no issuer was known. */
  readonly verification: StapleVerification | undefined;
  readonly mustStaple: boolean;
  readonly proceed: boolean;
  readonly reason: string;
}

/** Thrown (after the socket is destroyed) when the check says stop. */
export class StapleCheckError extends Error {
  constructor(readonly result: StapleCheckResult) {
    super(`OCSP staple check failed: ${result.reason}`);
    this.name = 'StapleCheckError';
  }
}

/** The policy alone: whether to go on, given what was (or was not) stapled. Pure. */
export function stapleDecision(
  verification: StapleVerification | undefined,
  mode: StapleCheckMode,
  mustStaple: boolean,
): { proceed: boolean; reason: string } {
  if (!verification) {
    if (mustStaple) return { proceed: false, reason: 'must-staple certificate without a staple' };
    return mode === 'soft-fail'
      ? { proceed: true, reason: 'no staple (soft-fail)' }
      : { proceed: false, reason: 'no staple (hard-fail)' };
  }
  if (verification.outcome === 'accept') return { proceed: true, reason: verification.reason };
  if (verification.outcome === 'reject') return { proceed: false, reason: verification.reason };
  if (mode === 'soft-fail' && !mustStaple)
    return { proceed: true, reason: `${verification.reason} (soft-fail)` };
  return { proceed: false, reason: verification.reason };
}

/**
 * tls.connect with a staple request and a check of the answer. Node has no
 * status callback inside the handshake: the response arrives in the
 * 'OCSPResponse' event, and the check runs at 'secureConnect', before the
 * caller can write a byte; a failing check destroys the socket and rejects
 * with StapleCheckError. Certificate verification (rejectUnauthorized) stays
 * Node's.
 */
export async function connectWithStapleCheck(
  options: tls.ConnectionOptions,
  check: StapleCheckOptions = {},
): Promise<{ socket: tls.TLSSocket; staple: StapleCheckResult }> {
  const mode = check.mode ?? 'hard-fail';
  // Node's connect() forwards requestOCSP to the TLSSocket; @types/node lists it only there.
  const socket = tls.connect({ ...options, requestOCSP: true } as tls.ConnectionOptions);
  let response: Buffer | undefined;
  socket.on('OCSPResponse', (der: Buffer) => {
    if (der && der.length > 0) response = der;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const peer = socket.getPeerCertificate(true);
  const leafDer = peer.raw;
  const issuerDer =
    check.issuerDer ??
    (peer.issuerCertificate && peer.issuerCertificate.fingerprint256 !== peer.fingerprint256
      ? peer.issuerCertificate.raw
      : undefined);
  const mustStaple = isMustStaple(leafDer);
  let verification: StapleVerification | undefined;
  if (response) {
    verification = issuerDer
      ? await verifyStaple({
          responseDer: response,
          certificateDer: leafDer,
          issuerDer,
          nowMs: (check.now ?? Date.now)(),
          ...(check.maxSkewMs !== undefined ? { maxSkewMs: check.maxSkewMs } : {}),
        })
      : { outcome: 'error', reason: "the leaf's issuer is unknown: cannot verify the staple" };
  }
  const decision = stapleDecision(verification, mode, mustStaple);
  const result: StapleCheckResult = {
    stapled: response !== undefined,
    verification,
    mustStaple,
    ...decision,
  };
  if (!result.proceed) {
    socket.destroy();
    throw new StapleCheckError(result);
  }
  return { socket, staple: result };
}
