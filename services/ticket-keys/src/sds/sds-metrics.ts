import { Counter, Gauge, type Registry } from 'prom-client';

export interface SdsMetrics {
  readonly streams: Gauge;
  readonly pushes: Counter<'ring'>;
  readonly nacks: Counter<'resource'>;
}

/** Envoy's SDS streams on this replica: how many, what was pushed, what was refused. */
export function createSdsMetrics(registry: Registry): SdsMetrics {
  return {
    streams: new Gauge({
      name: 'keyfleet_sds_streams',
      help: 'Open SDS StreamSecrets streams (Envoys) on this replica.',
      registers: [registry],
    }),
    pushes: new Counter({
      name: 'keyfleet_sds_pushes_total',
      help: 'Ticket-key secrets sent to SDS clients, by ring.',
      labelNames: ['ring'] as const,
      registers: [registry],
    }),
    nacks: new Counter({
      name: 'keyfleet_sds_nacks_total',
      help: 'SDS responses a client rejected (error_detail), by resource; it keeps its last good version.',
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
  };
}
