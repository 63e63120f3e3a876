import type { Logger } from '@keyfleet/service-kit';
import { OcspCertStatus } from '@keyfleet/proto';
import { fetchOcspOverHttp, type HttpFetchLimits } from '../fetch/http-fetch.js';
import type { ResponderLimiter } from '../fetch/responder-limiter.js';
import { responderOrigin } from '../fetch/responder-limiter.js';
import { FetchResult, validateOcspResponse } from '@keyfleet/tls-engine';
import { buildOcspRequest, type CertIdHash, type OcspRequestForCertificate } from '../ocsp/ocsp-request.js';
import { parseCertificateDer, type ParsedChain } from '../pki/certificate-chain.js';
import type * as pkijs from 'pkijs';
import type { CertificateStore } from '../store/certificate-store.js';
import { certificateLabel, type OcspMetrics } from '../metrics/ocsp-metrics.js';
import { nextRefreshAtMs, nextRetryAtMs, type RefreshPolicy } from './refresh-schedule.js';

const preparedCacheLimit = 50_000;
/** Distinct issuing CAs among the registered certificates: a handful in practice. */
const issuerCacheLimit = 256;

/** What one refresh of one certificate needs; resolved options plus narrow collaborators. */
export interface StapleRefresherDeps {
  readonly store: Pick<CertificateStore, 'get' | 'storeStaple' | 'recordFailure' | 'responderFailures'>;
  readonly metrics: OcspMetrics;
  readonly logger: Logger;
  readonly limiter: ResponderLimiter;
  readonly clock: () => number;
  readonly random: () => number;
  readonly certIdHash: CertIdHash;
  readonly skewMs: number;
  readonly http: HttpFetchLimits;
  readonly policy: RefreshPolicy;
}

/** What the job does next: nothing (the certificate is gone or has no responder) or run again at a time. */
export type RefreshOutcome =
  | { readonly kind: 'unregistered' }
  | { readonly kind: 'no_ocsp_url' }
  | {
      readonly kind: 'scheduled';
      readonly result: FetchResult;
      /** On the injected clock (what FetchState shows). */
      readonly nextAttemptAtMs: number;
      /** From now: what the job waits, in real time whatever the injected clock says. */
      readonly delayMs: number;
    };

/**
 * One refresh: fetch (within the per-responder limit), validate, offer the
 * staple to the store's compare-and-swap, and decide when to run again. A
 * failure records why and backs off; it never touches the stored staple.
 */
export class StapleRefresher {
  /** Parsed issuer and built request per certificate: both are fixed for as long as the id is registered. */
  readonly #prepared = new Map<
    string,
    { issuerDer: Uint8Array; issuer: pkijs.Certificate; request: OcspRequestForCertificate }
  >();
  /**
   * Parsed issuers by their DER: a CA issues many of the registered leaves,
   * and parsing its certificate again for each was a tenth of a first
   * refresh. The parsed object is only read.
   */
  readonly #issuers = new Map<string, pkijs.Certificate>();

  constructor(private readonly deps: StapleRefresherDeps) {}

  #issuer(der: Uint8Array): pkijs.Certificate {
    const key = Buffer.from(der).toString('base64');
    let issuer = this.#issuers.get(key);
    if (!issuer) {
      issuer = parseCertificateDer(der);
      if (this.#issuers.size >= issuerCacheLimit) this.#issuers.delete(this.#issuers.keys().next().value!);
      this.#issuers.set(key, issuer);
    }
    return issuer;
  }

  async #prepare(
    chain: ParsedChain,
  ): Promise<{ issuer: pkijs.Certificate; request: OcspRequestForCertificate }> {
    const cached = this.#prepared.get(chain.id);
    if (cached && Buffer.from(cached.issuerDer).equals(Buffer.from(chain.issuerDer))) return cached;
    const issuer = this.#issuer(chain.issuerDer);
    const request = await buildOcspRequest(parseCertificateDer(chain.leafDer), issuer, this.deps.certIdHash);
    if (this.#prepared.size >= preparedCacheLimit) this.#prepared.delete(this.#prepared.keys().next().value!);
    const prepared = { issuerDer: chain.issuerDer, issuer, request };
    this.#prepared.set(chain.id, prepared);
    return prepared;
  }

  async refresh(id: string): Promise<RefreshOutcome> {
    const { store, metrics, logger, limiter, clock, random, policy } = this.deps;
    const certificate = await store.get(id);
    if (!certificate) return { kind: 'unregistered' };
    const url = certificate.chain.ocspUrl;
    if (!url) return { kind: 'no_ocsp_url' };
    const responder = responderOrigin(url);

    const { issuer, request } = await this.#prepare(certificate.chain);

    const startedAt = performance.now();
    const answer = await limiter.run(responder, () => fetchOcspOverHttp(url, request.der, this.deps.http));
    const latencySeconds =
      answer.ok || answer.reason === FetchResult.HttpError
        ? (performance.now() - startedAt) / 1000
        : undefined;
    const nowMs = clock();
    const verdict = answer.ok
      ? await validateOcspResponse({
          der: answer.body,
          certId: request.certId,
          issuer,
          nowMs,
          skewMs: this.deps.skewMs,
          maxResponseBytes: this.deps.http.maxResponseBytes,
        })
      : answer;

    if (verdict.ok) {
      const nextAttemptAtMs = nextRefreshAtMs(policy, verdict.staple, nowMs, random());
      const stored = await store.storeStaple(
        id,
        responder,
        { ...verdict.staple, fetchedAtMs: nowMs, responderUrl: url },
        { atMs: nowMs, nextAttemptAtMs },
      );
      metrics.recordFetch(responder, FetchResult.Ok, latencySeconds);
      if (stored === 'not_registered') return { kind: 'unregistered' };
      if (stored === 'stored' && verdict.staple.certStatus === OcspCertStatus.REVOKED) {
        logger.warn(
          {
            certificate: certificateLabel(id),
            subject: certificate.chain.subject,
            revokedAtMs: verdict.staple.revokedAtMs,
            responder,
          },
          'OCSP says the certificate is REVOKED; the revoked staple is served as it is',
        );
      }
      return { kind: 'scheduled', result: FetchResult.Ok, nextAttemptAtMs, delayMs: nextAttemptAtMs - nowMs };
    }

    const responderFailures = await store.responderFailures(responder);
    const failures = Math.max(certificate.fetch.consecutiveFailures, responderFailures) + 1;
    const nextAttemptAtMs = nextRetryAtMs(policy, failures, nowMs, random());
    metrics.recordFetch(responder, verdict.reason, latencySeconds);
    logger.warn(
      {
        certificate: certificateLabel(id),
        responder,
        result: verdict.reason,
        detail: verdict.detail,
        failures,
      },
      'OCSP fetch failed; the last good staple, if any, stays',
    );
    const recorded = await store.recordFailure(id, responder, {
      atMs: nowMs,
      nextAttemptAtMs,
      error: `${verdict.reason}: ${verdict.detail}`,
    });
    if (recorded === undefined) return { kind: 'unregistered' };
    return { kind: 'scheduled', result: verdict.reason, nextAttemptAtMs, delayMs: nextAttemptAtMs - nowMs };
  }
}
