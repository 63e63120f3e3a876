import { createHash } from 'node:crypto';

/**
 * Every Redis key and channel of the service, built from one prefix (default
 * `kf`). The `{ocsp}` hash tag puts the registry in one Redis Cluster slot so
 * the multi-key scripts run there; BullMQ's keys get their own tag.
 */
export interface OcspRedisKeys {
  /** Hash: one registered certificate, its staple and its fetch state. */
  certificate(id: string): string;
  /** Set of registered certificate ids. */
  readonly certificateIndex: string;
  /** Hash: consecutive failures of one responder (by origin), for backoff. */
  responder(origin: string): string;
  /** Pub/sub channel: `updated:<id>` or `removed:<id>` after every change. */
  readonly changesChannel: string;
  /** BullMQ's key prefix and queue name for the refresh jobs. */
  readonly queuePrefix: string;
  readonly queueName: string;
}

export function ocspRedisKeys(prefix: string): OcspRedisKeys {
  const base = `${prefix}:{ocsp}`;
  return {
    certificate: (id) => `${base}:cert:${id}`,
    certificateIndex: `${base}:certs`,
    responder: (origin) =>
      `${base}:responder:${createHash('sha256').update(origin).digest('hex').slice(0, 32)}`,
    changesChannel: `${base}:changes`,
    queuePrefix: `${prefix}:{ocsp-refresh}`,
    queueName: 'ocsp-refresh',
  };
}
