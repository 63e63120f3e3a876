/**
 * The OCSP staple service: a certificate registry whose OCSP responses are
 * fetched once for the whole fleet, validated (RFC 6960, RFC 5019), stored in
 * Redis, refreshed on BullMQ delayed jobs and streamed over gRPC
 * (StapleService). `createOcspFetchServer` starts a replica; `src/main.ts` is
 * the process entry.
 */
export { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
export {
  compileOcspFetchOptions,
  DEFAULT_REFRESH_POLICY,
  type OcspFetchServerOptions,
  type ResolvedOcspFetchOptions,
} from './config/ocsp-fetch-options.js';
export { compileOcspFetchConfig, type OcspFetchConfig } from './config/ocsp-fetch-config.js';
export { FetchResult } from '@keyfleet/tls-engine';
export type { CertIdHash } from './ocsp/ocsp-request.js';
export type { RefreshPolicy } from './refresh/refresh-schedule.js';
export { createOcspMetrics, type OcspMetrics, type RegistryView } from './metrics/ocsp-metrics.js';
