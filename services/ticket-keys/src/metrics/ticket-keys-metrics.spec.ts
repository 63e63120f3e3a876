import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { compileRingParams } from '../schedule/ring-params.js';
import type { RingState } from '../schedule/key-set-view.js';
import { createTicketKeysMetrics } from './ticket-keys-metrics.js';

const minute = 60_000;
const now = 10 * minute;
const ring = (name: string, rotationIntervalMs: number): RingState => ({
  params: compileRingParams({ ring: name, rotationIntervalMs }),
  epoch: 3,
  keys: [
    {
      name: new Uint8Array(16).fill(1),
      secret: new Uint8Array(32).fill(2),
      publishedAtMs: 2 * minute,
      activatesAtMs: 3 * minute,
    },
  ],
  revokedNamesHex: [],
  lastRotatedAtMs: 2 * minute,
});

async function samples(registry: Registry, name: string): Promise<string[]> {
  return (await registry.getSingleMetricAsString(name)).split('\n').filter((line) => line.startsWith(name));
}

test("each ring's interval, key age and last rotation are gauges read at scrape time", async () => {
  const registry = new Registry();
  const rings = [ring('edge', 60 * minute), ring('daily', 24 * 60 * minute)];
  createTicketKeysMetrics(
    registry,
    { rings: () => rings, watchers: () => 2, ackCoverage: () => 1 },
    () => now,
  );
  assert.deepEqual(await samples(registry, 'keyfleet_ring_rotation_interval_seconds'), [
    'keyfleet_ring_rotation_interval_seconds{ring="edge"} 3600',
    'keyfleet_ring_rotation_interval_seconds{ring="daily"} 86400',
  ]);
  assert.deepEqual(await samples(registry, 'keyfleet_active_key_age_seconds'), [
    'keyfleet_active_key_age_seconds{ring="edge"} 420',
    'keyfleet_active_key_age_seconds{ring="daily"} 420',
  ]);
  assert.deepEqual(await samples(registry, 'keyfleet_last_rotation_timestamp_seconds'), [
    'keyfleet_last_rotation_timestamp_seconds{ring="edge"} 120',
    'keyfleet_last_rotation_timestamp_seconds{ring="daily"} 120',
  ]);
});

test('every known ring’s counters are exported at 0 before their first event, and count from there', async () => {
  const registry = new Registry();
  const rings = [ring('edge', 60 * minute)];
  const metrics = createTicketKeysMetrics(
    registry,
    { rings: () => rings, watchers: () => 0, ackCoverage: () => undefined },
    () => now,
  );
  for (const name of [
    'keyfleet_revocations_total',
    'keyfleet_key_records_unreadable_total',
    'keyfleet_epoch_regressions_total',
  ]) {
    assert.deepEqual(await samples(registry, name), [`${name}{ring="edge"} 0`]);
  }
  assert.deepEqual(await samples(registry, 'keyfleet_rotations_total'), [
    'keyfleet_rotations_total{ring="edge",result="ok"} 0',
    'keyfleet_rotations_total{ring="edge",result="error"} 0',
  ]);
  metrics.revocations.inc({ ring: 'edge' });
  metrics.rotations.inc({ ring: 'edge', result: 'ok' });
  assert.deepEqual(await samples(registry, 'keyfleet_revocations_total'), [
    'keyfleet_revocations_total{ring="edge"} 1',
  ]);
  assert.deepEqual(await samples(registry, 'keyfleet_rotations_total'), [
    'keyfleet_rotations_total{ring="edge",result="ok"} 1',
    'keyfleet_rotations_total{ring="edge",result="error"} 0',
  ]);
});
