import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { unknownMetricNames } from './metric-names.js';

const root = path.resolve(import.meta.dirname, '../..');
const dashboardText = readFileSync(path.join(root, 'deploy/grafana/keyfleet.json'), 'utf8');

interface Panel {
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(dashboardText) as { uid: string; panels: Panel[] };

test('metric-name check catches a misspelt name (the check can fail)', () => {
  assert.deepEqual(unknownMetricNames('rate(keyfleet_rotation_total[5m])'), ['keyfleet_rotation_total']);
  assert.deepEqual(unknownMetricNames('rate(keyfleet_ocsp_responder_latency_seconds_bucket[5m])'), []);
});

test('every dashboard expression uses only the fixed metric names', () => {
  const expressions = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((t) => [panel.title, t.expr]),
  );
  assert.ok(expressions.length >= 10);
  for (const [title, expr] of expressions)
    assert.deepEqual(unknownMetricNames(expr!), [], `${title}: ${expr}`);
});

test('the dashboard covers what operators asked for', () => {
  const all = dashboard.panels
    .flatMap((panel) => panel.targets ?? [])
    .map((t) => t.expr)
    .join('\n');
  for (const metric of [
    'keyfleet_engine_ticket_decisions_total',
    'keyfleet_active_key_age_seconds',
    'keyfleet_keys',
    'keyfleet_ack_coverage_ratio',
    'keyfleet_rotations_total',
    'keyfleet_ocsp_staple_seconds_until_next_update',
    'keyfleet_ocsp_fetches_total',
  ]) {
    assert.ok(all.includes(metric), metric);
  }
});

test('the ConfigMap ships the same dashboard', () => {
  const shipped = readFileSync(path.join(root, 'deploy/k8s/base/grafana/keyfleet.json'), 'utf8');
  assert.equal(shipped, dashboardText, 'copy deploy/grafana/keyfleet.json to deploy/k8s/base/grafana/');
});
