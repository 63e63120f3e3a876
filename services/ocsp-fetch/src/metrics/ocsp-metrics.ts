import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { OcspCertStatus, StapleStatus } from '@keyfleet/proto';
import type { FetchResult } from '@keyfleet/tls-engine';
import { stapleStatusOf } from '../records/certificate-record.js';
import type { StoredCertificate } from '../store/stored-certificate.js';

/** The `certificate` label: the first 16 hex characters of the certificate id. */
export function certificateLabel(id: string): string {
  return id.slice(0, 16);
}

const statusLabel: Readonly<Record<StapleStatus, string>> = {
  [StapleStatus.GOOD]: 'good',
  [StapleStatus.REVOKED]: 'revoked',
  [StapleStatus.UNKNOWN]: 'unknown',
  [StapleStatus.NO_OCSP_URL]: 'no_ocsp_url',
  [StapleStatus.PENDING]: 'pending',
  [StapleStatus.FETCH_FAILING]: 'fetch_failing',
  [StapleStatus.EXPIRED]: 'expired',
  [StapleStatus.UNSPECIFIED]: 'unspecified',
  [StapleStatus.UNRECOGNIZED]: 'unspecified',
};

/** What the gauges are computed from at scrape time: this replica's view of the registry. */
export interface RegistryView {
  certificates(): Iterable<StoredCertificate>;
}

export interface OcspMetrics {
  /** Counts one fetch and, when the responder answered at all, its latency. */
  recordFetch(responder: string, result: FetchResult, latencySeconds: number | undefined): void;
}

/**
 * The service's metrics on an explicit registry. Fetch counts and latency are
 * recorded as they happen; the per-certificate gauges are computed at scrape
 * time from the registry view, so an unregistered certificate's series
 * disappear and an expired staple shows as expired without any write.
 */
export function createOcspMetrics(registry: Registry, view: RegistryView, clock: () => number): OcspMetrics {
  const fetches = new Counter({
    name: 'keyfleet_ocsp_fetches_total',
    help: 'OCSP fetches by responder origin and result (ok, or why no staple was stored).',
    labelNames: ['responder', 'result'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'keyfleet_ocsp_responder_latency_seconds',
    help: 'Time from sending an OCSP request to the end of the answer, by responder origin.',
    labelNames: ['responder'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const eachServable = (visit: (certificate: StoredCertificate, label: string, nowMs: number) => void) => {
    const nowMs = clock();
    for (const certificate of view.certificates()) {
      const status = stapleStatusOf(certificate, nowMs);
      if (certificate.staple && status !== StapleStatus.EXPIRED && status !== StapleStatus.NO_OCSP_URL) {
        visit(certificate, certificateLabel(certificate.chain.id), nowMs);
      }
    }
  };
  new Gauge({
    name: 'keyfleet_ocsp_staple_seconds_until_next_update',
    help: "Seconds until the served staple's nextUpdate (capped at the responder certificate's notAfter).",
    labelNames: ['certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      eachServable((c, label, nowMs) =>
        this.set({ certificate: label }, (c.staple!.nextUpdateMs - nowMs) / 1000),
      );
    },
  });
  // The expiry alert's threshold is a share of this: a staple is refreshed
  // at half its validity whether the CA signs for an hour or for a week.
  new Gauge({
    name: 'keyfleet_ocsp_staple_validity_seconds',
    help: "Seconds from the served staple's thisUpdate to its nextUpdate (capped at the responder certificate's notAfter).",
    labelNames: ['certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      eachServable((c, label) =>
        this.set({ certificate: label }, (c.staple!.nextUpdateMs - c.staple!.thisUpdateMs) / 1000),
      );
    },
  });
  new Gauge({
    name: 'keyfleet_ocsp_staple_age_seconds',
    help: "Seconds since the served staple's thisUpdate.",
    labelNames: ['certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      eachServable((c, label, nowMs) =>
        this.set({ certificate: label }, (nowMs - c.staple!.thisUpdateMs) / 1000),
      );
    },
  });
  new Gauge({
    name: 'keyfleet_ocsp_staple_revoked',
    help: 'Per certificate: 1 when the served staple says the certificate is revoked, else 0.',
    labelNames: ['certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      eachServable((c, label) =>
        this.set({ certificate: label }, c.staple!.certStatus === OcspCertStatus.REVOKED ? 1 : 0),
      );
    },
  });
  new Gauge({
    name: 'keyfleet_ocsp_certificates',
    help: 'Registered certificates by staple status.',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(
        ['good', 'revoked', 'unknown', 'no_ocsp_url', 'pending', 'fetch_failing', 'expired'].map((s) => [
          s,
          0,
        ]),
      );
      const nowMs = clock();
      for (const certificate of view.certificates()) {
        const label = statusLabel[stapleStatusOf(certificate, nowMs)];
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      for (const [status, count] of counts) this.set({ status }, count);
    },
  });
  return {
    recordFetch(responder, result, latencySeconds) {
      fetches.inc({ responder, result });
      if (latencySeconds !== undefined) latency.observe({ responder }, latencySeconds);
    },
  };
}
