import { defaultNodeId } from '../providers/key-set-provider.js';
import { serviceConnectionFromEnv, type ServiceConnection } from '../client/channel-credentials.js';

/** host:port as the node listens or dials. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The engine node's configuration, resolved once from the environment. */
export interface EngineNodeConfig {
  /** KEYFLEET_LISTEN, default 127.0.0.1:8443 (port 0: any free port). */
  readonly listen: HostPort;
  /** KEYFLEET_CERT_CHAIN: PEM path, leaf first. Required. */
  readonly certChainPath: string;
  /** KEYFLEET_KEY: PEM path. Required. */
  readonly keyPath: string;
  /** KEYFLEET_RING, default "default". */
  readonly ring: string;
  /** KEYFLEET_TICKET_KEYS_ADDRESS, default 127.0.0.1:50051. */
  readonly ticketKeysAddress: string;
  /** KEYFLEET_OCSP_FETCH_ADDRESS, default 127.0.0.1:50052; "off" disables stapling. */
  readonly ocspFetchAddress: string | undefined;
  /** KEYFLEET_NODE_ID, default the host name. */
  readonly nodeId: string;
  /** KEYFLEET_METRICS_ADDRESS: where GET /metrics and /healthz listen; unset: not served. */
  readonly metrics: HostPort | undefined;
  /** KEYFLEET_UPSTREAM: host:port to proxy decrypted TCP to; unset: answer HTTPS requests ourselves. */
  readonly upstream: HostPort | undefined;
  /** KEYFLEET_STRICT_MUST_STAPLE: refuse handshakes for must-staple certificates without a staple. Default false. */
  readonly strictMustStaple: boolean;
  /**
   * KEYFLEET_SHUTDOWN_GRACE_MS: how long SIGTERM waits for open connections
   * before closing them. Default 3000: with the rest of the stop the node is
   * gone within 5 s (the manifests' terminationGracePeriodSeconds).
   */
  readonly shutdownGraceMs: number;
  /**
   * KEYFLEET_STAPLE_WAIT_MS: how long readiness waits for the first staple of a
   * certificate the service is still fetching (PENDING), so the first
   * handshake is stapled; after it the node is ready without one. Default 10000.
   */
  readonly stapleWaitMs: number;
  /** KEYFLEET_INSECURE_DEV, or KEYFLEET_CLIENT_CA / _CERT / _KEY (mTLS to the services). */
  readonly connection: ServiceConnection;
}

/** A configuration error naming the variable, so the node exits with something to act on. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function hostPort(name: string, value: string): HostPort {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65_535) throw new ConfigError(`${name}: expected host:port, got "${value}"`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function flag(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${value}"`);
}

/** Reads and checks every variable; throws ConfigError naming the first bad one. Pure apart from the default node id (host name + random). */
export function compileEngineNodeConfig(env: Readonly<Record<string, string | undefined>>): EngineNodeConfig {
  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const required = (name: string) => {
    const value = get(name);
    if (!value) throw new ConfigError(`${name}: required`);
    return value;
  };
  const ring = get('KEYFLEET_RING') ?? 'default';
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(ring)) {
    throw new ConfigError(
      `KEYFLEET_RING: 1 to 63 characters of [a-z0-9._-], starting with a letter or digit`,
    );
  }
  const nodeId = get('KEYFLEET_NODE_ID') ?? defaultNodeId();
  if (!/^[\x20-\x7e]{1,128}$/.test(nodeId)) {
    throw new ConfigError('KEYFLEET_NODE_ID: 1 to 128 printable ASCII characters');
  }
  const ocsp = get('KEYFLEET_OCSP_FETCH_ADDRESS') ?? '127.0.0.1:50052';
  const ticketKeysAddress = get('KEYFLEET_TICKET_KEYS_ADDRESS') ?? '127.0.0.1:50051';
  hostPort('KEYFLEET_TICKET_KEYS_ADDRESS', ticketKeysAddress);
  if (ocsp !== 'off') hostPort('KEYFLEET_OCSP_FETCH_ADDRESS', ocsp);
  const graceText = get('KEYFLEET_SHUTDOWN_GRACE_MS') ?? '3000';
  const shutdownGraceMs = Number(graceText);
  if (!Number.isSafeInteger(shutdownGraceMs) || shutdownGraceMs < 0 || shutdownGraceMs > 600_000) {
    throw new ConfigError(`KEYFLEET_SHUTDOWN_GRACE_MS: 0 to 600000, got "${graceText}"`);
  }
  const waitText = get('KEYFLEET_STAPLE_WAIT_MS') ?? '10000';
  const stapleWaitMs = Number(waitText);
  if (!Number.isSafeInteger(stapleWaitMs) || stapleWaitMs < 0 || stapleWaitMs > 600_000) {
    throw new ConfigError(`KEYFLEET_STAPLE_WAIT_MS: 0 to 600000, got "${waitText}"`);
  }
  let connection: ServiceConnection;
  try {
    connection = serviceConnectionFromEnv(env);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const metrics = get('KEYFLEET_METRICS_ADDRESS');
  const upstream = get('KEYFLEET_UPSTREAM');
  return {
    listen: hostPort('KEYFLEET_LISTEN', get('KEYFLEET_LISTEN') ?? '127.0.0.1:8443'),
    certChainPath: required('KEYFLEET_CERT_CHAIN'),
    keyPath: required('KEYFLEET_KEY'),
    ring,
    ticketKeysAddress,
    ocspFetchAddress: ocsp === 'off' ? undefined : ocsp,
    nodeId,
    metrics: metrics ? hostPort('KEYFLEET_METRICS_ADDRESS', metrics) : undefined,
    upstream: upstream ? hostPort('KEYFLEET_UPSTREAM', upstream) : undefined,
    strictMustStaple: flag('KEYFLEET_STRICT_MUST_STAPLE', get('KEYFLEET_STRICT_MUST_STAPLE')),
    shutdownGraceMs,
    stapleWaitMs,
    connection,
  };
}
