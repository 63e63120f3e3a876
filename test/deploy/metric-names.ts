/**
 * The metric names fixed for dashboards and alerts (common rules), so the
 * deploy tests can check every PromQL expression against them.
 */
export const fixedMetricNames: ReadonlySet<string> = new Set([
  'keyfleet_grpc_requests_total',
  'keyfleet_grpc_request_duration_seconds',
  'keyfleet_redis_up',
  'keyfleet_rotations_total',
  'keyfleet_active_key_age_seconds',
  'keyfleet_keys',
  'keyfleet_key_set_epoch',
  'keyfleet_watchers',
  'keyfleet_ack_coverage_ratio',
  'keyfleet_last_rotation_timestamp_seconds',
  'keyfleet_revocations_total',
  'keyfleet_key_records_unreadable_total',
  'keyfleet_epoch_regressions_total',
  'keyfleet_ocsp_fetches_total',
  'keyfleet_ocsp_staple_seconds_until_next_update',
  'keyfleet_ocsp_staple_age_seconds',
  'keyfleet_ocsp_certificates',
  'keyfleet_ocsp_responder_latency_seconds',
  'keyfleet_ocsp_staple_revoked',
  'keyfleet_engine_ticket_decisions_total',
  'keyfleet_engine_ticket_age_seconds',
  'keyfleet_engine_key_set_epoch',
  'keyfleet_engine_key_set_staleness_seconds',
  'keyfleet_engine_ticket_issuing_stopped',
  'keyfleet_engine_encrypting_key_info',
  'keyfleet_engine_illegal_decisions_total',
  'keyfleet_engine_staples_served_total',
  'keyfleet_engine_ticket_hook_fallback',
  'keyfleet_engine_ticket_callbacks_fallback',
  'keyfleet_engine_ticket_callback_errors_total',
  'keyfleet_engine_node_internal_missing',
]);

/** Histograms are queried through their _bucket/_sum/_count series. */
const histogramSuffix = /_(bucket|sum|count)$/;

/** Every keyfleet_* name a PromQL expression uses that is not in the fixed list. */
export function unknownMetricNames(expr: string): string[] {
  const unknown: string[] = [];
  for (const [name] of expr.matchAll(/\bkeyfleet_[a-z0-9_]+/g)) {
    if (fixedMetricNames.has(name) || fixedMetricNames.has(name.replace(histogramSuffix, ''))) continue;
    unknown.push(name);
  }
  return unknown;
}
