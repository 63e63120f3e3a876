import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface SdsMetrics {
  readonly streams: Gauge<'api'>;
  readonly pushes: Counter<'resource'>;
  readonly nacks: Counter<'resource'>;
  readonly convergence: Histogram<'resource'>;
}

/**
 * Envoy's SDS streams on this replica: how many, what was pushed, what was
 * refused, and how long a change took to be applied everywhere it was sent.
 * `resource` is the source's bounded label (`ticket-keys/<ring>`, `staple/*`).
 */
export function createSdsMetrics(registry: Registry): SdsMetrics {
  const streams = new Gauge({
    name: 'keyfleet_sds_streams',
    help: 'Open SDS streams (Envoys) on this replica, by api (sotw, delta).',
    labelNames: ['api'] as const,
    registers: [registry],
  });
  // Both series exist from the start, at 0: a dashboard shows "no Envoys", not "no data".
  for (const api of ['sotw', 'delta']) streams.set({ api }, 0);
  return {
    streams,
    pushes: new Counter({
      name: 'keyfleet_sds_pushes_total',
      help: 'Secrets sent to SDS clients, by resource.',
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
    nacks: new Counter({
      name: 'keyfleet_sds_nacks_total',
      help: 'SDS responses a client rejected (error_detail), by resource; it keeps its last good version.',
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
    convergence: new Histogram({
      name: 'keyfleet_sds_convergence_seconds',
      help: 'Seconds from a version first being sent by this replica to the last ACK of it among the streams it was sent to.',
      labelNames: ['resource'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}
