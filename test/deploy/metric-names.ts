/**
 * Every metric name the code registers, read from the registries the code
 * builds (each component's metrics on a fresh registry, nothing started), so
 * the deploy tests check every dashboard and alert expression against what
 * the processes really export. A renamed metric fails them.
 */
import { Registry } from 'prom-client';
import { syncMetrics } from '@keyfleet/cli';
import { createOcspMetrics } from '@keyfleet/ocsp-fetch';
import { createGrpcServerMetrics, createRedisUpGauge, createSdsMetrics } from '@keyfleet/service-kit';
import { createTicketKeysMetrics } from '@keyfleet/ticket-keys';
import { engineMetrics } from '@keyfleet/tls-engine';

function namesIn(build: (registry: Registry) => void): string[] {
  const registry = new Registry();
  build(registry);
  return registry.getMetricsAsArray().map((metric) => metric.name);
}

/** By the process that exports them. */
export const registeredMetricNames: Readonly<Record<string, readonly string[]>> = {
  'ticket-keys': namesIn((registry) => {
    createGrpcServerMetrics(registry);
    createRedisUpGauge(registry);
    createTicketKeysMetrics(registry, { rings: () => [], watchers: () => 0, ackCoverage: () => undefined });
    createSdsMetrics(registry);
  }),
  'ocsp-fetch': namesIn((registry) => {
    createGrpcServerMetrics(registry);
    createRedisUpGauge(registry);
    createOcspMetrics(registry, { certificates: () => [] }, Date.now);
    createSdsMetrics(registry);
  }),
  'TLS node': namesIn((registry) => void engineMetrics(registry)),
  'sync sidecar': namesIn((registry) => void syncMetrics(registry, 'nginx', ['keys', 'staples'], Date.now)),
};

const allNames: ReadonlySet<string> = new Set(Object.values(registeredMetricNames).flat());

/** Histograms are queried through their _bucket/_sum/_count series. */
const histogramSuffix = /_(bucket|sum|count)$/;

/** Every keyfleet_* name a PromQL expression uses that no code registers. */
export function unknownMetricNames(expr: string): string[] {
  const unknown: string[] = [];
  for (const [name] of expr.matchAll(/\bkeyfleet_[a-z0-9_]+/g)) {
    if (allNames.has(name) || allNames.has(name.replace(histogramSuffix, ''))) continue;
    unknown.push(name);
  }
  return unknown;
}
