import { Redis, type RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { createRedisUpGauge } from './service-metrics.js';

/** How long one Redis command may take before it fails (and the caller answers UNAVAILABLE or from cache). */
export const redisCommandTimeoutMs = 2000;

/**
 * An ioredis client that fails fast while Redis is down (no offline queue, one
 * retry per request) so writes are refused with UNAVAILABLE instead of
 * hanging, reconnects forever with capped backoff, and exports
 * keyfleet_redis_up. A Redis that stops answering without closing the
 * connection (paused, black-holed) is caught too: every command times out
 * after `redisCommandTimeoutMs`, TCP keepalive probes the socket after 5 s
 * idle, and a connection attempt gives up after 5 s. Connections for
 * blocking commands or subscriptions (BullMQ, SUBSCRIBE) must be made with
 * `commandTimeout: undefined` (see `withoutCommandTimeout`).
 */
export function connectRedis(
  url: string,
  registry: Registry,
  logger: Logger,
  options: RedisOptions = {},
): Redis {
  const up = createRedisUpGauge(registry);
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: redisCommandTimeoutMs,
    keepAlive: 5000,
    connectTimeout: 5000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 2000),
    ...options,
  });
  redis.on('ready', () => {
    up.set(1);
    logger.info('redis connected');
  });
  redis.on('close', () => up.set(0));
  redis.on('error', (error: Error) => logger.warn({ err: { message: error.message } }, 'redis error'));
  return redis;
}

/** Options for a duplicate() that runs blocking commands or subscribes: no per-command timeout. */
export const withoutCommandTimeout: RedisOptions = { commandTimeout: undefined };

/** True while the client can send commands. */
export function redisIsReady(redis: Redis): boolean {
  return redis.status === 'ready';
}

/**
 * Closes a connection for a shutdown that must not hang: QUIT, so Redis sees a
 * clean close after every reply already sent, or a hard disconnect when Redis
 * does not answer within `timeoutMs` (down, or a blocking command in flight).
 * Never throws.
 */
export async function closeRedis(redis: Redis, timeoutMs = 500): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    // No open socket: stop reconnecting, and that is all.
    redis.disconnect();
    return;
  }
  // Resolved once the socket has closed, whichever way it was closed.
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  const quit = timeoutMs > 0 ? redis.quit().catch(() => undefined) : undefined;
  if (!quit || !(await settlesWithin(quit, timeoutMs))) redis.disconnect();
  await settlesWithin(ended, 200);
}

/**
 * True when `work` settles (either way) within `ms`, false when the time ran
 * out first; `work` goes on either way. For bounding each step of a shutdown.
 */
export async function settlesWithin(work: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (!work) return true;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  const settled = work.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}
