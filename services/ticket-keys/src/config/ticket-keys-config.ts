import path from 'node:path';
import {
  ConfigError,
  envBoolean,
  envListenAddress,
  envOptionalString,
  envString,
  serverSecurityFromEnv,
  type Env,
  type ServerSecurity,
} from '@keyfleet/service-kit';
import { checkRingName } from '../schedule/ring-params.js';
import { defaultKeyPrefix, redisKeys } from '../store/redis-keys.js';

/** The service's configuration, read from the environment once at start-up. */
export interface TicketKeysConfig {
  readonly redisUrl: string;
  readonly grpcAddress: string;
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly keyPrefix: string;
  /** A KEK file, or (development only) generate one under stateDir. */
  readonly kek: { readonly file: string } | { readonly generateInDir: string };
  readonly insecureDev: boolean;
  readonly security: ServerSecurity;
  readonly bootstrapRings: readonly string[];
  readonly logLevel: string;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads and checks every variable; throws ConfigError naming the variable, so
 * a bad value stops start-up before anything listens.
 *
 *   REDIS_URL (required), KEYFLEET_GRPC_ADDRESS (127.0.0.1:50051),
 *   KEYFLEET_METRICS_ADDRESS (127.0.0.1:9101), KEYFLEET_KEY_PREFIX (kf),
 *   KEYFLEET_KEK_FILE (required unless KEYFLEET_INSECURE_DEV=true, which
 *   generates $KEYFLEET_STATE_DIR/kek, default .keyfleet/kek),
 *   KEYFLEET_TLS_CERT/KEY/CLIENT_CA + KEYFLEET_ROLES_FILE (unless insecure dev),
 *   KEYFLEET_BOOTSTRAP_RINGS (comma list, default "default"; "none" for none), LOG_LEVEL (info).
 */
export function compileTicketKeysConfig(env: Env): TicketKeysConfig {
  const redisUrl = envOptionalString(env, 'REDIS_URL');
  if (!redisUrl) throw new ConfigError('REDIS_URL', 'required (for example redis://127.0.0.1:6379)');
  if (!/^rediss?:\/\//.test(redisUrl))
    throw new ConfigError('REDIS_URL', 'expected redis:// or rediss:// URL');
  const grpcAddress = envListenAddress(env, 'KEYFLEET_GRPC_ADDRESS', '127.0.0.1:50051');
  const metricsAddress = envListenAddress(env, 'KEYFLEET_METRICS_ADDRESS', '127.0.0.1:9101');
  const colon = metricsAddress.lastIndexOf(':');
  const keyPrefix = envString(env, 'KEYFLEET_KEY_PREFIX', defaultKeyPrefix);
  try {
    redisKeys(keyPrefix);
  } catch (error) {
    throw new ConfigError('KEYFLEET_KEY_PREFIX', (error as Error).message);
  }
  const insecureDev = envBoolean(env, 'KEYFLEET_INSECURE_DEV', false);
  const kekFile = envOptionalString(env, 'KEYFLEET_KEK_FILE');
  let kek: TicketKeysConfig['kek'];
  if (kekFile) kek = { file: kekFile };
  else if (insecureDev)
    kek = { generateInDir: path.resolve(envString(env, 'KEYFLEET_STATE_DIR', '.keyfleet')) };
  else throw new ConfigError('KEYFLEET_KEK_FILE', 'required (lines of <kek-id>:<base64 32 bytes>)');
  const bootstrapList = envString(env, 'KEYFLEET_BOOTSTRAP_RINGS', 'default');
  const bootstrapRings = (bootstrapList === 'none' ? '' : bootstrapList)
    .split(',')
    .map((ring) => ring.trim())
    .filter((ring) => ring !== '');
  for (const ring of bootstrapRings) {
    try {
      checkRingName(ring);
    } catch (error) {
      throw new ConfigError('KEYFLEET_BOOTSTRAP_RINGS', (error as Error).message);
    }
  }
  const logLevel = envString(env, 'LOG_LEVEL', 'info');
  if (!logLevels.includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `expected one of ${logLevels.join(', ')}`);
  return {
    redisUrl,
    grpcAddress,
    metricsHost: metricsAddress.slice(0, colon).replace(/^\[|\]$/g, ''),
    metricsPort: Number(metricsAddress.slice(colon + 1)),
    keyPrefix,
    kek,
    insecureDev,
    security: serverSecurityFromEnv(env, grpcAddress),
    bootstrapRings,
    logLevel,
  };
}
