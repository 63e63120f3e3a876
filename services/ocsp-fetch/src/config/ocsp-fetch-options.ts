import { responderAddressPolicy, type ResponderAddressPolicy } from '../fetch/responder-address.js';
import type { Registry } from 'prom-client';
import { ConfigError, type Logger, type ServerSecurity } from '@keyfleet/service-kit';
import type { CertIdHash } from '../ocsp/ocsp-request.js';
import { maxGetEncodedBytes } from '../ocsp/ocsp-request.js';
import { defaultMaxResponseBytes, defaultSkewMs } from '@keyfleet/tls-engine';
import type { RefreshPolicy } from '../refresh/refresh-schedule.js';

/**
 * Options of createOcspFetchServer. Everything but `redisUrl` and `security`
 * has a default (documented per field); those two have no safe default.
 */
export interface OcspFetchServerOptions {
  /** Aborted when the process is told to stop while starting: stop waiting for Redis. Default none. */
  readonly startAbort?: AbortSignal;
  /** Required: where the registry, staples and refresh jobs live. */
  readonly redisUrl: string;
  /** Required: mTLS with roles, or insecure-dev (service-kit). */
  readonly security: ServerSecurity;
  /** gRPC host:port. Default '127.0.0.1:50052'; port 0 picks a free one. */
  readonly grpcAddress?: string;
  /** host:port of GET /metrics and /healthz. Default: none (no HTTP server). */
  readonly metricsAddress?: string;
  /** Prefix of every Redis key. Default 'kf'. */
  readonly keyPrefix?: string;
  /** CertID hash algorithm in requests. Default 'sha1' (what RFC 5019 responders must support). */
  readonly certIdHash?: CertIdHash;
  /** Clock skew tolerated on thisUpdate and nextUpdate. Default 300000 (5 min). */
  readonly skewMs?: number;
  /** TCP connect timeout per fetch. Default 3000. */
  readonly connectTimeoutMs?: number;
  /** Whole-exchange timeout per fetch. Default 10000. */
  readonly fetchTimeoutMs?: number;
  /** Response size cap. Default 65536 (what the contract carries). */
  readonly maxResponseBytes?: number;
  /** GET when the URL-encoded request is at most this long, else POST. Default 255 (RFC 5019); 0 always POSTs. */
  readonly getMaxEncodedBytes?: number;
  /** Fetches in flight per responder from one replica. Default 8. */
  readonly perResponderConcurrency?: number;
  /** Refresh jobs one replica runs at once. Default 32. */
  readonly workerConcurrency?: number;
  /** False: serve gRPC but fetch nothing on this replica. Default true. */
  readonly runRefreshWorker?: boolean;
  /** When to refresh; each field defaults as documented in DEFAULT_REFRESH_POLICY. */
  readonly refresh?: Partial<RefreshPolicy>;
  /** Default WatchStaples heartbeat. Default 5000. */
  readonly heartbeatIntervalMs?: number;
  /** How often staples passing nextUpdate are announced as EXPIRED. Default 1000. */
  readonly expirySweepMs?: number;
  /** How often every certificate's refresh job is re-ensured (a safety net). Default 60000. */
  readonly rescheduleIntervalMs?: number;
  /** Where metrics go. Default: a new Registry. */
  readonly registry?: Registry;
  /** Default: service-kit's logger named 'ocsp-fetch'. */
  readonly logger?: Logger;
  /** Time for validation and status. Default Date.now (BullMQ's delays use real time regardless). */
  readonly clock?: () => number;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /**
   * Loopback, private, link-local or reserved responder addresses fetches may
   * still reach (CIDRs, e.g. "127.0.0.1/32" for a local responder). Default
   * none: such addresses are refused after DNS resolution.
   */
  readonly allowedResponderNetworks?: readonly string[];
  /**
   * Where each Envoy finds a certificate's private key, for the SDS staple
   * secrets (`staple/<certificate id>`): an absolute path on the Envoy's disk
   * holding `{certificate}`, which becomes the certificate id. keyfleet never
   * holds private keys. Default none: SDS staple requests answer
   * FAILED_PRECONDITION.
   */
  readonly sdsPrivateKeyPath?: string;
}

/**
 * Refresh at half the validity window ± 10 %, never later than 30 min (or a
 * quarter of the window) before nextUpdate, never sooner than 30 s from now;
 * retry after 5 s, doubling per consecutive failure of the responder, at most
 * 15 min.
 */
export const DEFAULT_REFRESH_POLICY: RefreshPolicy = {
  refreshAtFraction: 0.5,
  jitterFraction: 0.1,
  safetyMarginMs: 30 * 60_000,
  minRefreshDelayMs: 30_000,
  retryInitialMs: 5_000,
  retryMaxMs: 15 * 60_000,
};

export type ResolvedOcspFetchOptions = Required<
  Omit<
    OcspFetchServerOptions,
    | 'metricsAddress'
    | 'registry'
    | 'logger'
    | 'refresh'
    | 'allowedResponderNetworks'
    | 'startAbort'
    | 'sdsPrivateKeyPath'
  >
> & {
  readonly sdsPrivateKeyPath: string | undefined;
  readonly addressPolicy: ResponderAddressPolicy;
  readonly metricsAddress: string | undefined;
  readonly registry: Registry | undefined;
  readonly logger: Logger | undefined;
  readonly refresh: RefreshPolicy;
};

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min || resolved > max) {
    throw new ConfigError(name, `must be a whole number between ${min} and ${max}, got ${resolved}`);
  }
  return resolved;
}

/** An absolute path holding the placeholder, with no control characters and no "..". */
export function privateKeyPathTemplate(
  value: string | undefined,
  name = 'sdsPrivateKeyPath',
): string | undefined {
  if (value === undefined) return undefined;
  const printable = [...value].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f);
  if (
    !value.startsWith('/') ||
    !value.includes('{certificate}') ||
    value.length > 512 ||
    !printable ||
    value.split('/').includes('..')
  ) {
    throw new ConfigError(
      name,
      'an absolute path on the Envoy holding {certificate}, e.g. /etc/envoy/private/{certificate}.key',
    );
  }
  return value;
}

function fraction(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved < min || resolved > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${resolved}`);
  }
  return resolved;
}

/** Resolves every default once and checks every value, throwing ConfigError at start-up. */
export function compileOcspFetchOptions(options: OcspFetchServerOptions): ResolvedOcspFetchOptions {
  if (!options.redisUrl || !/^rediss?:\/\//.test(options.redisUrl)) {
    throw new ConfigError('redisUrl', 'required, redis://host:port or rediss://');
  }
  const keyPrefix = options.keyPrefix ?? 'kf';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(keyPrefix)) {
    throw new ConfigError('keyPrefix', 'expected 1 to 64 letters, digits, "_", "." or "-"');
  }
  const certIdHash = options.certIdHash ?? 'sha1';
  if (certIdHash !== 'sha1' && certIdHash !== 'sha256')
    throw new ConfigError('certIdHash', 'expected sha1 or sha256');
  const refresh = { ...DEFAULT_REFRESH_POLICY, ...options.refresh };
  const day = 86_400_000;
  const resolvedRefresh: RefreshPolicy = {
    refreshAtFraction: fraction('refresh.refreshAtFraction', refresh.refreshAtFraction, 0.5, 0.01, 0.95),
    jitterFraction: fraction('refresh.jitterFraction', refresh.jitterFraction, 0.1, 0, 0.4),
    safetyMarginMs: integer('refresh.safetyMarginMs', refresh.safetyMarginMs, 0, 0, day),
    minRefreshDelayMs: integer('refresh.minRefreshDelayMs', refresh.minRefreshDelayMs, 0, 10, day),
    retryInitialMs: integer('refresh.retryInitialMs', refresh.retryInitialMs, 0, 10, day),
    retryMaxMs: integer('refresh.retryMaxMs', refresh.retryMaxMs, 0, 10, day),
  };
  if (resolvedRefresh.retryMaxMs < resolvedRefresh.retryInitialMs) {
    throw new ConfigError('refresh.retryMaxMs', 'must not be below refresh.retryInitialMs');
  }
  const connectTimeoutMs = integer('connectTimeoutMs', options.connectTimeoutMs, 3000, 10, 120_000);
  const fetchTimeoutMs = integer('fetchTimeoutMs', options.fetchTimeoutMs, 10_000, 10, 120_000);
  return {
    redisUrl: options.redisUrl,
    security: options.security,
    grpcAddress: options.grpcAddress ?? '127.0.0.1:50052',
    metricsAddress: options.metricsAddress,
    keyPrefix,
    certIdHash,
    skewMs: integer('skewMs', options.skewMs, defaultSkewMs, 0, day),
    connectTimeoutMs: Math.min(connectTimeoutMs, fetchTimeoutMs),
    fetchTimeoutMs,
    maxResponseBytes: integer(
      'maxResponseBytes',
      options.maxResponseBytes,
      defaultMaxResponseBytes,
      512,
      1 << 24,
    ),
    getMaxEncodedBytes: integer(
      'getMaxEncodedBytes',
      options.getMaxEncodedBytes,
      maxGetEncodedBytes,
      0,
      4096,
    ),
    perResponderConcurrency: integer('perResponderConcurrency', options.perResponderConcurrency, 8, 1, 1024),
    workerConcurrency: integer('workerConcurrency', options.workerConcurrency, 32, 1, 4096),
    runRefreshWorker: options.runRefreshWorker ?? true,
    refresh: resolvedRefresh,
    heartbeatIntervalMs: integer('heartbeatIntervalMs', options.heartbeatIntervalMs, 5000, 100, 60_000),
    expirySweepMs: integer('expirySweepMs', options.expirySweepMs, 1000, 10, 60_000),
    rescheduleIntervalMs: integer('rescheduleIntervalMs', options.rescheduleIntervalMs, 60_000, 100, day),
    registry: options.registry,
    logger: options.logger,
    clock: options.clock ?? Date.now,
    random: options.random ?? Math.random,
    addressPolicy: responderAddressPolicy(options.allowedResponderNetworks ?? []),
    sdsPrivateKeyPath: privateKeyPathTemplate(options.sdsPrivateKeyPath),
  };
}
