import { Counter, Gauge, type Registry } from 'prom-client';

/** The metrics `attach` records, registered once per registry. */
export interface NodeTlsMetrics {
  readonly ticketDecisions: Counter<'ring' | 'key' | 'decision' | 'reason'>;
  readonly staplesServed: Counter<'result'>;
  readonly ticketHookFallback: Gauge;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/**
 * Registers (or reuses, when the engine's own metrics module or an earlier
 * `attach` already did) the decision counter, the staples-served counter and
 * the hook-fallback gauge. Reuse keeps one registry shareable by several
 * servers and by the engine's providers.
 */
export function nodeTlsMetrics(registry: Registry): NodeTlsMetrics {
  const ticketDecisions =
    existing<Counter<'ring' | 'key' | 'decision' | 'reason'>>(
      registry,
      'keyfleet_engine_ticket_decisions_total',
    ) ??
    new Counter({
      name: 'keyfleet_engine_ticket_decisions_total',
      help: 'Ticket decisions by ring, key (short name), decision and reason.',
      labelNames: ['ring', 'key', 'decision', 'reason'] as const,
      registers: [registry],
    });
  const staplesServed =
    existing<Counter<'result'>>(registry, 'keyfleet_engine_staples_served_total') ??
    new Counter({
      name: 'keyfleet_engine_staples_served_total',
      help: 'OCSP requests answered: stapled, none (no staple held), expired (held but past nextUpdate), refused (strict must-staple).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
  const ticketHookFallback =
    existing<Gauge>(registry, 'keyfleet_engine_ticket_hook_fallback') ??
    new Gauge({
      name: 'keyfleet_engine_ticket_hook_fallback',
      help: "1 when Node's per-ticket hook is missing and the static single-key API is used.",
      registers: [registry],
    });
  return { ticketDecisions, staplesServed, ticketHookFallback };
}
