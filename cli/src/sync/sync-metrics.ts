import { Counter, Gauge, type Registry } from 'prom-client';
import type { CertificateRecord } from '@keyfleet/proto';
import { certificateLabel } from '@keyfleet/tls-engine';

/** What a sidecar keeps in step: the ring's keys, or the staples. */
export type SyncStream = 'keys' | 'staples';

/**
 * What an operator needs to see of a sync sidecar: which epoch the
 * terminator runs, when each stream was last applied and last failed, how
 * often reloads fail, and how old each staple it put on disk is. Labels hold
 * the target kind, the ring, the stream and public certificate id prefixes;
 * never a key.
 */
export interface SyncMetrics {
  succeeded(stream: SyncStream, nowMs: number): void;
  failed(stream: SyncStream, nowMs: number): void;
  reloadFailed(): void;
  keySetApplied(ring: string, epoch: number): void;
  staplesApplied(certificates: readonly CertificateRecord[]): void;
}

export function syncMetrics(
  registry: Registry,
  target: string,
  streams: readonly SyncStream[],
  clock: () => number,
): SyncMetrics {
  const appliedEpoch = new Gauge({
    name: 'keyfleet_sync_applied_epoch',
    help: 'Epoch of the key set the terminator runs (files written and, where needed, reloaded).',
    labelNames: ['target', 'ring'] as const,
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'keyfleet_sync_last_success_timestamp_seconds',
    help: 'When the stream was last applied to the terminator; 0 until the first time.',
    labelNames: ['target', 'stream'] as const,
    registers: [registry],
  });
  const lastFailure = new Gauge({
    name: 'keyfleet_sync_last_failure_timestamp_seconds',
    help: 'When applying the stream last failed (a write, the runtime API, or the reload); 0 if never.',
    labelNames: ['target', 'stream'] as const,
    registers: [registry],
  });
  const applyFailures = new Counter({
    name: 'keyfleet_sync_apply_failures_total',
    help: 'Applies that failed and will be retried with backoff.',
    labelNames: ['target', 'stream'] as const,
    registers: [registry],
  });
  const reloadFailures = new Counter({
    name: 'keyfleet_sync_reload_failures_total',
    help: 'Reload commands that failed: the terminator still runs the files it had.',
    labelNames: ['target'] as const,
    registers: [registry],
  });
  let staplesThisUpdateMs = new Map<string, number>();
  new Gauge({
    name: 'keyfleet_sync_staple_age_seconds',
    help: 'Age (now − thisUpdate) of the staple last put in place per certificate.',
    labelNames: ['target', 'certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const nowMs = clock();
      for (const [id, thisUpdateMs] of staplesThisUpdateMs)
        this.set({ target, certificate: certificateLabel(id) }, Math.max(0, (nowMs - thisUpdateMs) / 1000));
    },
  });
  // Every series an alert or panel reads exists from the start.
  for (const stream of streams) {
    lastSuccess.set({ target, stream }, 0);
    lastFailure.set({ target, stream }, 0);
    applyFailures.inc({ target, stream }, 0);
  }
  reloadFailures.inc({ target }, 0);
  return {
    succeeded: (stream, nowMs) => lastSuccess.set({ target, stream }, nowMs / 1000),
    failed(stream, nowMs) {
      lastFailure.set({ target, stream }, nowMs / 1000);
      applyFailures.inc({ target, stream });
    },
    reloadFailed: () => reloadFailures.inc({ target }),
    keySetApplied: (ring, epoch) => appliedEpoch.set({ target, ring }, epoch),
    staplesApplied(certificates) {
      staplesThisUpdateMs = new Map(
        certificates.flatMap((record) =>
          record.staple ? [[record.id, record.staple.thisUpdateMs] as const] : [],
        ),
      );
    },
  };
}
