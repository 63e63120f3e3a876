import { Counter, Gauge, type Registry } from 'prom-client';
import { scheduleOfRing, type RingState } from '../schedule/key-set-view.js';

/** Where the gauges read from at scrape time: memory only, no I/O. */
export interface TicketKeysMetricsSource {
  rings(): readonly RingState[];
  watchers(ring: string): number;
  ackCoverage(ring: string): number | undefined;
}

export interface TicketKeysMetrics {
  readonly rotations: Counter<'ring' | 'result'>;
  readonly revocations: Counter<'ring'>;
  readonly epochRegressions: Counter<'ring'>;
  readonly unreadableRecords: Counter<'ring'>;
}

/**
 * The ticket-key service's metrics (names fixed in the common rules) on an
 * explicit registry. Per-ring gauges are computed when scraped from the
 * replica's cached key sets, with ring names as labels and never key bytes.
 */
export function createTicketKeysMetrics(
  registry: Registry,
  source: TicketKeysMetricsSource,
  clock: () => number = Date.now,
): TicketKeysMetrics {
  const perRing = (
    name: string,
    help: string,
    value: (state: RingState, nowMs: number) => number | undefined,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['ring'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const nowMs = clock();
        for (const state of source.rings()) {
          const measured = value(state, nowMs);
          if (measured !== undefined) this.set({ ring: state.params.ring }, measured);
        }
      },
    });

  perRing('keyfleet_active_key_age_seconds', 'Time since the ACTIVE key became active.', (state, nowMs) => {
    const active = scheduleOfRing(state).activeAt(nowMs);
    return active ? (nowMs - active.activatesAtMs) / 1000 : undefined;
  });
  perRing('keyfleet_key_set_epoch', 'The ring epoch this replica holds.', (state) => state.epoch);
  perRing('keyfleet_watchers', 'Live WatchKeySet streams on this replica.', (state) =>
    source.watchers(state.params.ring),
  );
  perRing(
    'keyfleet_ack_coverage_ratio',
    'Share of live watchers (fleet-wide) on the newest epoch.',
    (state) => source.ackCoverage(state.params.ring),
  );
  // The alerts compare rotation and key age with each ring's own interval,
  // so one rule serves a ring that rotates hourly and one that rotates daily.
  perRing(
    'keyfleet_ring_rotation_interval_seconds',
    "The ring's rotation interval (its parameters), seconds.",
    (state) => state.params.rotationIntervalMs / 1000,
  );
  perRing(
    'keyfleet_last_rotation_timestamp_seconds',
    'When the ring last published a key, Unix seconds.',
    (state) => state.lastRotatedAtMs / 1000,
  );
  new Gauge({
    name: 'keyfleet_keys',
    help: 'Keys of the ring by state.',
    labelNames: ['ring', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const nowMs = clock();
      for (const state of source.rings()) {
        const schedule = scheduleOfRing(state);
        const counts = { pending: 0, active: 0, decrypt_only: 0 };
        for (const key of schedule.keys) {
          const keyState = schedule.stateOf(key, nowMs);
          if (keyState === 'pending') counts.pending++;
          else if (keyState === 'active') counts.active++;
          else if (keyState === 'decrypt-only') counts.decrypt_only++;
        }
        for (const [name, count] of Object.entries(counts))
          this.set({ ring: state.params.ring, state: name }, count);
      }
    },
  });
  // Every ring's counters exist at 0 from its first scrape: increase() in the
  // alerts cannot see the first event of a series that appears already at 1.
  const perRingCounter = (name: string, help: string) =>
    new Counter<'ring'>({
      name,
      help,
      labelNames: ['ring'] as const,
      registers: [registry],
      collect() {
        for (const state of source.rings()) this.inc({ ring: state.params.ring }, 0);
      },
    });
  return {
    rotations: new Counter({
      name: 'keyfleet_rotations_total',
      help: 'Rotations by ring and result (ok, conflict, error, skipped).',
      labelNames: ['ring', 'result'] as const,
      registers: [registry],
      collect() {
        for (const state of source.rings())
          for (const result of ['ok', 'error']) this.inc({ ring: state.params.ring, result }, 0);
      },
    }),
    revocations: perRingCounter('keyfleet_revocations_total', 'Keys revoked, by ring.'),
    unreadableRecords: perRingCounter(
      'keyfleet_key_records_unreadable_total',
      'Reads that left out a key record which did not parse or open (tampered with, or an unknown KEK).',
    ),
    epochRegressions: perRingCounter(
      'keyfleet_epoch_regressions_total',
      'Times Redis held a ring older than this replica had seen and the merged state was written back.',
    ),
  };
}
