import { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import {
  closeRedis,
  connectRedis,
  createLogger,
  createSdsMetrics,
  secretDiscoveryServiceBinding,
  startServiceServer,
  withoutCommandTimeout,
  type Logger,
  type RunningServiceServer,
  type ServerSecurity,
  type ServiceBinding,
} from '@keyfleet/service-kit';
import { RotationScheduler } from '../job/rotation-scheduler.js';
import { createTicketKeysMetrics } from '../metrics/ticket-keys-metrics.js';
import { compileRingParams } from '../schedule/ring-params.js';
import type { KekRing } from '../store/kek.js';
import { KeyStore } from '../store/key-store.js';
import { redisKeys, defaultKeyPrefix } from '../store/redis-keys.js';
import { keySetSourceOf, type KeySetSource } from '../stream/key-set-cache.js';
import { KeySetHub } from '../stream/key-set-hub.js';
import { WatcherRegistry } from '../stream/watcher-registry.js';
import { ticketKeyServiceBinding } from './ticket-key-service.js';
import { ticketKeySecretSource } from '../sds/ticket-key-secret-source.js';

/** What an extra service (the keyless TicketService) may use. */
export interface ExtraServiceContext {
  readonly keySetSource: KeySetSource;
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface TicketKeysServerOptions {
  readonly redisUrl: string;
  /** Wraps and unwraps secrets at rest. */
  readonly keks: KekRing;
  readonly security: ServerSecurity;
  /** host:port. Default 127.0.0.1:0 (a free port). */
  readonly address?: string;
  /** Redis key prefix. Default "kf". */
  readonly keyPrefix?: string;
  /** Default: a fresh registry. */
  readonly registry?: Registry;
  /** Default: createLogger('ticket-keys'). */
  readonly logger?: Logger;
  /** Rings created at start (and after Redis returns) when absent, with default parameters. Default none. */
  readonly bootstrapRings?: readonly string[];
  /** Run the BullMQ rotation worker and schedulers. Default true. */
  readonly runScheduler?: boolean;
  /** More services on the same port, e.g. the keyless TicketService. Default none. */
  readonly extraServices?:
    readonly ServiceBinding[] | ((context: ExtraServiceContext) => readonly ServiceBinding[]);
  /** Default Date.now. */
  readonly clock?: () => number;
  /** How often watchers are re-announced for fleet-wide ack coverage. Default 2000. */
  readonly watcherRefreshMs?: number;
  /** How long start waits for Redis before serving, live but not ready. Default 5000. */
  readonly redisStartTimeoutMs?: number;
}

export interface RunningTicketKeysServer {
  readonly port: number;
  readonly registry: Registry;
  readonly keySetSource: KeySetSource;
  readonly store: KeyStore;
  readonly grpc: RunningServiceServer;
  /** True while Redis answers. */
  redisReady(): boolean;
  /**
   * Readiness: true once this replica has read its rings from Redis (it holds
   * a cache it can serve), and from then on, through Redis outages too:
   * watches keep streaming the cached keys and reads answer from them, while
   * writes get UNAVAILABLE. Liveness is separate and never follows Redis.
   */
  ready(): boolean;
  /** Drains gRPC (streams end), stops the worker and closes Redis. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts the ticket-key service: gRPC (TicketKeyService plus any extra
 * services, with service-kit's mTLS roles, health, reflection and metrics),
 * one Redis connection for commands, one for the change subscription, one
 * for BullMQ. Readiness (gRPC health "") is NOT_SERVING until the rings have
 * been read once, then SERVING for good: while Redis is unreachable watch
 * streams stay open on their last key set and reads answer from it (writes
 * get UNAVAILABLE). Each time Redis is back, rings lost by Redis are restored
 * from memory, bootstrap rings are ensured and rotation schedules upserted.
 * Liveness (health service "liveness", /livez) never follows Redis.
 */
export async function createTicketKeysServer(
  options: TicketKeysServerOptions,
): Promise<RunningTicketKeysServer> {
  const registry = options.registry ?? new Registry();
  const logger = options.logger ?? createLogger('ticket-keys');
  const clock = options.clock ?? Date.now;
  const keys = redisKeys(options.keyPrefix ?? defaultKeyPrefix);
  const bootstrapRings = (options.bootstrapRings ?? []).map((ring) => compileRingParams({ ring }));

  const redis = connectRedis(options.redisUrl, registry, logger);
  const subscriber = redis.duplicate({
    ...withoutCommandTimeout,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
  });
  subscriber.on('error', () => undefined); // the command connection logs Redis errors once
  const store = new KeyStore({
    redis,
    keys,
    keks: options.keks,
    clock,
    onUnreadableRecord: ({ ring, keyName, reason }) => {
      metrics.unreadableRecords.inc({ ring });
      logger.error({ ring, keyName, reason }, 'key record does not open; left out of the ring');
    },
    onRegression: ({ ring, storedEpoch, knownEpoch, epoch }) => {
      metrics.epochRegressions.inc({ ring });
      logger.warn(
        { ring, storedEpoch, knownEpoch, epoch },
        'Redis held an older state of the ring; wrote back the union of both at a higher epoch',
      );
    },
  });
  const hub = new KeySetHub({ subscriber, store, channel: keys.changesChannel, logger });
  const watchers = new WatcherRegistry({
    redis,
    keys,
    logger,
    clock,
    refreshMs: options.watcherRefreshMs,
    newestEpoch: (ring) => hub.current(ring)?.epoch,
    rings: () => hub.rings().map((state) => state.params.ring),
  });
  const metrics = createTicketKeysMetrics(
    registry,
    {
      rings: () => hub.rings(),
      watchers: (ring) => watchers.localWatchers(ring),
      ackCoverage: (ring) => watchers.lastCoverage(ring)?.ratio,
    },
    clock,
  );

  let bullConnection: Redis | undefined;
  let scheduler: RotationScheduler | undefined;
  if (options.runScheduler ?? true) {
    bullConnection = redis.duplicate({
      ...withoutCommandTimeout,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    bullConnection.on('error', () => undefined);
    scheduler = new RotationScheduler({
      connection: bullConnection,
      prefix: keys.bullmqPrefix,
      rotateIfDue: async (ring) => {
        const outcome = await store.rotate(ring, { onlyIfDue: true });
        if (outcome.result === 'ok') hub.accept(outcome.state);
        return outcome;
      },
      onOutcome: (ring, result) => metrics.rotations.inc({ ring, result }),
      logger,
    });
  }
  const ensureSchedule = (ring: string, rotationIntervalMs: number) => {
    scheduler
      ?.ensure(ring, rotationIntervalMs)
      .catch((error: unknown) =>
        logger.warn(
          { ring, err: { message: (error as Error).message } },
          'could not upsert rotation schedule',
        ),
      );
  };

  const keySetSource = keySetSourceOf(hub, clock);
  const extra =
    typeof options.extraServices === 'function'
      ? options.extraServices({ keySetSource, registry, logger })
      : (options.extraServices ?? []);
  const grpcServer = await startServiceServer({
    address: options.address ?? '127.0.0.1:0',
    security: options.security,
    registry,
    logger,
    services: [
      ticketKeyServiceBinding({
        store,
        hub,
        watchers,
        metrics,
        logger,
        clock,
        onRingChanged: ensureSchedule,
      }),
      secretDiscoveryServiceBinding({
        source: ticketKeySecretSource({ hub, watchers, clock }),
        metrics: createSdsMetrics(registry),
        logger,
        clock,
      }),
      ...extra,
    ],
  });

  // Everything that must happen each time Redis becomes reachable, in order:
  // restore lost rings first, so bootstrap does not create a fresh ring in
  // their place; then bootstrap; then schedules for every ring.
  let stopped = false;
  let loaded = false;
  let recovering: Promise<void> | undefined;
  const onRedisReady = () => {
    if (stopped) return;
    recovering = (async () => {
      try {
        await hub.refreshAll();
        for (const params of bootstrapRings) {
          const result = await store.putRing(params, { createOnly: true });
          if (result.created) logger.info({ ring: params.ring }, 'created bootstrap ring');
        }
        for (const ring of await store.listRingNames()) {
          const state = await store.readRing(ring);
          if (state) {
            hub.accept(state);
            ensureSchedule(ring, state.params.rotationIntervalMs);
          }
        }
      } catch (error) {
        logger.warn(
          { err: { message: (error as Error).message } },
          'recovery after Redis connect incomplete',
        );
      } finally {
        // SERVING only once the rings are caught up and the bootstrap rings
        // exist: a client that trusts health must not get NOT_FOUND for them.
        // If Redis dropped again meanwhile, the next 'ready' does this again.
        if (!stopped && redis.status === 'ready') {
          loaded = true;
          grpcServer.setServing(true);
        }
      }
    })();
  };
  redis.on('ready', onRedisReady);
  // Redis going away does not make the replica unready: it keeps serving its
  // cache (keyfleet_redis_up says Redis is down). Only a replica that has
  // never loaded is unready.

  const readyOrTimeout = new Promise<void>((resolve) => {
    if (redis.status === 'ready') return resolve();
    const timer = setTimeout(resolve, options.redisStartTimeoutMs ?? 5000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await readyOrTimeout;
  if (redis.status === 'ready') {
    if (!recovering) onRedisReady();
    await Promise.race([hub.start(), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    await recovering;
  } else {
    grpcServer.setServing(false);
    logger.warn('Redis is unreachable at start: live but not ready until it answers');
    hub.start().catch(() => undefined);
  }

  return {
    port: grpcServer.port,
    registry,
    keySetSource,
    store,
    grpc: grpcServer,
    redisReady: () => redis.status === 'ready',
    ready: () => loaded && !stopped,
    async stop(graceMs = 2000) {
      stopped = true;
      await grpcServer.stop(graceMs);
      watchers.close();
      await hub.close();
      // A running rotation gets a moment; a shutdown never hangs on Redis.
      const inTime = (await scheduler?.close(1500)) ?? true;
      subscriber.disconnect();
      const linger = inTime ? 500 : 0;
      await Promise.all([
        bullConnection ? closeRedis(bullConnection, linger) : undefined,
        closeRedis(redis, linger),
      ]);
    },
  };
}
