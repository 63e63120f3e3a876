import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { TicketDecision, TicketReason } from '@keyfleet/proto';
import { engineMetrics } from './engine-metrics.js';

const lines = async (registry: Registry, name: string) =>
  (await registry.getSingleMetricAsString(name)).split('\n').filter((line) => line && !line.startsWith('#'));

test('one set of metrics per registry, whoever asks first (engine, provider, attach)', () => {
  const registry = new Registry();
  const metrics = engineMetrics(registry);
  assert.equal(engineMetrics(registry), metrics);
  assert.notEqual(engineMetrics(new Registry()), metrics);
});

test('decisions are labelled with enum names and a short key name; unknown keys share one label', async () => {
  const registry = new Registry();
  const metrics = engineMetrics(registry);
  metrics.countDecision(
    'edge',
    new Uint8Array(16).fill(0xab),
    TicketDecision.USE_RENEW,
    TicketReason.KEY_RETIRED,
  );
  metrics.countDecision('edge', 'ab'.repeat(16), TicketDecision.USE_RENEW, TicketReason.KEY_RETIRED);
  metrics.countDecision('edge', undefined, TicketDecision.IGNORE_RENEW, TicketReason.AUTH_FAILED);
  assert.deepEqual(await lines(registry, 'keyfleet_engine_ticket_decisions_total'), [
    'keyfleet_engine_ticket_decisions_total{ring="edge",key="abababababababab",decision="USE_RENEW",reason="KEY_RETIRED"} 2',
    'keyfleet_engine_ticket_decisions_total{ring="edge",key="unknown",decision="IGNORE_RENEW",reason="AUTH_FAILED"} 1',
  ]);
});

test('epoch, staleness and encrypting key are read from tracked rings at scrape time, and stop with untrack', async () => {
  const registry = new Registry();
  const metrics = engineMetrics(registry);
  let epoch: number | undefined = 4;
  const untrack = metrics.trackRing('edge', {
    epoch: () => epoch,
    stalenessMs: () => 2500,
    encryptingKeyName: () => new Uint8Array(16).fill(1),
    issuingBoundMs: () => 20_000,
  });
  assert.deepEqual(await lines(registry, 'keyfleet_engine_key_set_epoch'), [
    'keyfleet_engine_key_set_epoch{ring="edge"} 4',
  ]);
  assert.deepEqual(await lines(registry, 'keyfleet_engine_ticket_issuing_bound_seconds'), [
    'keyfleet_engine_ticket_issuing_bound_seconds{ring="edge"} 20',
  ]);
  assert.deepEqual(await lines(registry, 'keyfleet_engine_key_set_staleness_seconds'), [
    'keyfleet_engine_key_set_staleness_seconds{ring="edge"} 2.5',
  ]);
  assert.deepEqual(await lines(registry, 'keyfleet_engine_encrypting_key_info'), [
    'keyfleet_engine_encrypting_key_info{ring="edge",key="0101010101010101"} 1',
  ]);
  epoch = 5;
  assert.deepEqual(await lines(registry, 'keyfleet_engine_key_set_epoch'), [
    'keyfleet_engine_key_set_epoch{ring="edge"} 5',
  ]);
  untrack();
  assert.deepEqual(await lines(registry, 'keyfleet_engine_key_set_epoch'), []);
  assert.deepEqual(await lines(registry, 'keyfleet_engine_encrypting_key_info'), []);
});
