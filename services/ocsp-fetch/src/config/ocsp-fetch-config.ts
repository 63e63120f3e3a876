import { responderAddressPolicy } from '../fetch/responder-address.js';
import {
  ConfigError,
  envInteger,
  envListenAddress,
  envOptionalString,
  envString,
  serverSecurityFromEnv,
  type Env,
} from '@keyfleet/service-kit';
import { defaultMaxResponseBytes, defaultSkewMs } from '@keyfleet/tls-engine';
import { privateKeyPathTemplate, type OcspFetchServerOptions } from './ocsp-fetch-options.js';

/** The process configuration: server options plus the log level. */
export interface OcspFetchConfig {
  readonly server: OcspFetchServerOptions;
  readonly logLevel: string;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads the environment once at start-up; every problem is a ConfigError
 * naming the variable. REDIS_URL is required; KEYFLEET_GRPC_ADDRESS
 * (default 127.0.0.1:50052), KEYFLEET_METRICS_ADDRESS (127.0.0.1:9102),
 * KEYFLEET_KEY_PREFIX (kf), KEYFLEET_INSECURE_DEV or KEYFLEET_TLS_CERT/KEY/
 * CLIENT_CA + KEYFLEET_ROLES_FILE, KEYFLEET_OCSP_SKEW_MS (300000),
 * KEYFLEET_OCSP_HASH (sha1|sha256), KEYFLEET_OCSP_TIMEOUT_MS (10000),
 * KEYFLEET_OCSP_MAX_RESPONSE_BYTES (65536), KEYFLEET_OCSP_ALLOWED_NETWORKS
 * (comma list of CIDRs that responders may resolve to although loopback,
 * private or link-local; default none), KEYFLEET_SDS_PRIVATE_KEY_PATH (the
 * private key's path on each Envoy, holding {certificate}; default none: no
 * SDS staples), LOG_LEVEL (info).
 */
export function compileOcspFetchConfig(env: Env): OcspFetchConfig {
  const redisUrl = envOptionalString(env, 'REDIS_URL');
  if (!redisUrl) throw new ConfigError('REDIS_URL', 'required (for example redis://127.0.0.1:6379)');
  if (!/^rediss?:\/\/\S+$/.test(redisUrl))
    throw new ConfigError('REDIS_URL', 'expected redis://… or rediss://…');
  const keyPrefix = envString(env, 'KEYFLEET_KEY_PREFIX', 'kf');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(keyPrefix)) {
    throw new ConfigError('KEYFLEET_KEY_PREFIX', 'expected 1 to 64 letters, digits, "_", "." or "-"');
  }
  const hash = envString(env, 'KEYFLEET_OCSP_HASH', 'sha1').toLowerCase();
  if (hash !== 'sha1' && hash !== 'sha256') {
    throw new ConfigError('KEYFLEET_OCSP_HASH', `expected sha1 or sha256, got "${hash}"`);
  }
  const logLevel = envString(env, 'LOG_LEVEL', 'info').toLowerCase();
  if (!logLevels.includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `expected one of ${logLevels.join(', ')}`);
  const grpcAddress = envListenAddress(env, 'KEYFLEET_GRPC_ADDRESS', '127.0.0.1:50052');
  const allowedResponderNetworks = (envOptionalString(env, 'KEYFLEET_OCSP_ALLOWED_NETWORKS') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  responderAddressPolicy(allowedResponderNetworks, 'KEYFLEET_OCSP_ALLOWED_NETWORKS');
  const sdsPrivateKeyPath = privateKeyPathTemplate(
    envOptionalString(env, 'KEYFLEET_SDS_PRIVATE_KEY_PATH'),
    'KEYFLEET_SDS_PRIVATE_KEY_PATH',
  );
  return {
    logLevel,
    server: {
      redisUrl,
      security: serverSecurityFromEnv(env, grpcAddress),
      grpcAddress,
      allowedResponderNetworks,
      ...(sdsPrivateKeyPath === undefined ? {} : { sdsPrivateKeyPath }),
      metricsAddress: envListenAddress(env, 'KEYFLEET_METRICS_ADDRESS', '127.0.0.1:9102'),
      keyPrefix,
      certIdHash: hash,
      skewMs: envInteger(env, 'KEYFLEET_OCSP_SKEW_MS', defaultSkewMs, { min: 0, max: 86_400_000 }),
      fetchTimeoutMs: envInteger(env, 'KEYFLEET_OCSP_TIMEOUT_MS', 10_000, { min: 10, max: 120_000 }),
      maxResponseBytes: envInteger(env, 'KEYFLEET_OCSP_MAX_RESPONSE_BYTES', defaultMaxResponseBytes, {
        min: 512,
        max: 16_777_216,
      }),
    },
  };
}
