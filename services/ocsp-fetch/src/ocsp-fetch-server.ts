import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import {
  closeRedis,
  connectRedis,
  createLogger,
  createSdsMetrics,
  secretDiscoveryServiceBinding,
  startMetricsServer,
  startServiceServer,
  type Logger,
  type MetricsServer,
} from '@keyfleet/service-kit';
import { compileOcspFetchOptions, type OcspFetchServerOptions } from './config/ocsp-fetch-options.js';
import { ResponderLimiter } from './fetch/responder-limiter.js';
import { createOcspMetrics } from './metrics/ocsp-metrics.js';
import { ensurePkiEngine } from '@keyfleet/tls-engine';
import { RefreshQueue } from './refresh/refresh-queue.js';
import { StapleRefresher } from './refresh/staple-refresher.js';
import { stapleServiceBinding } from './server/staple-service.js';
import { CertificateStore } from './store/certificate-store.js';
import { ocspRedisKeys } from './store/redis-keys.js';
import { StapleHub } from './stream/staple-hub.js';
import { stapleSecretSource } from './sds/staple-secret-source.js';

/** A running ocsp-fetch replica. */
export interface OcspFetchServer {
  readonly grpcPort: number;
  /** Undefined when no metricsAddress was given. */
  readonly metricsPort: number | undefined;
  readonly registry: Registry;
  /** This replica's view of the registry (tests wait on it). */
  readonly hub: StapleHub;
  /** Readiness: the registry has been read from Redis once (and stays so through outages). */
  ready(): boolean;
  /** Resolves once the replica is ready (tests). */
  whenReady(): Promise<void>;
  /**
   * Stops serving (streams end, unary calls get 1.5 s to finish, then are
   * cancelled), gives running fetches 1.5 s, closes every connection: about
   * 4 s at most, whatever Redis or a responder does.
   */
  stop(): Promise<void>;
}

function waitForReady(redis: Redis, signal: AbortSignal): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      redis.off('ready', onReady);
      reject(new Error('stopped before Redis answered'));
    };
    redis.once('ready', onReady);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** How long start waits for the first load before returning a live but unready replica. */
const startWaitMs = 5000;

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

/** A side connection (subscriber, BullMQ) that logs its errors instead of crashing on them. */
function sideConnection(url: string, logger: Logger, role: string): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 2000),
  });
  redis.on('error', (error: Error) => logger.debug({ role, err: { message: error.message } }, 'redis error'));
  return redis;
}

/**
 * Starts one ocsp-fetch replica: the Redis registry, the staple hub (one
 * subscription fanned out to every watcher), the BullMQ refresh worker, the
 * gRPC StapleService (with health, reflection, roles and metrics from
 * service-kit) and, when asked, the /metrics endpoint. Any number of
 * replicas may share one Redis: each certificate is still fetched once per
 * refresh. Options are compiled once; a bad value throws before anything starts.
 */
export async function createOcspFetchServer(input: OcspFetchServerOptions): Promise<OcspFetchServer> {
  const options = compileOcspFetchOptions(input);
  ensurePkiEngine();
  const registry = options.registry ?? new Registry();
  const logger = options.logger ?? createLogger('ocsp-fetch');
  const keys = ocspRedisKeys(options.keyPrefix);

  const redis = connectRedis(options.redisUrl, registry, logger);
  const subscriber = sideConnection(options.redisUrl, logger, 'subscriber');
  const cleanups: Array<() => Promise<void> | void> = [
    () => subscriber.disconnect(),
    () => closeRedis(redis),
  ];
  const cleanUp = async () => {
    for (const step of cleanups.reverse()) await step();
  };

  try {
    const store = new CertificateStore(redis, keys);
    const hub = new StapleHub({
      store,
      subscriber,
      changesChannel: keys.changesChannel,
      clock: options.clock,
      logger,
      expirySweepMs: options.expirySweepMs,
    });
    cleanups.push(() => hub.stop());

    const metrics = createOcspMetrics(registry, { certificates: () => hub.certificates() }, options.clock);
    const refresher = new StapleRefresher({
      store,
      metrics,
      logger,
      limiter: new ResponderLimiter(options.perResponderConcurrency),
      clock: options.clock,
      random: options.random,
      certIdHash: options.certIdHash,
      skewMs: options.skewMs,
      http: {
        connectTimeoutMs: options.connectTimeoutMs,
        totalTimeoutMs: options.fetchTimeoutMs,
        maxResponseBytes: options.maxResponseBytes,
        getMaxEncodedBytes: options.getMaxEncodedBytes,
        addressPolicy: options.addressPolicy,
      },
      policy: options.refresh,
    });
    const queue = new RefreshQueue({
      keys,
      connect: () => sideConnection(options.redisUrl, logger, 'bullmq'),
      refresher,
      logger,
      workerConcurrency: options.workerConcurrency,
      runWorker: options.runRefreshWorker,
    });
    cleanups.push(() => queue.close());

    // Every certificate with a responder has its job; this also heals a job
    // lost to a Redis failover or to BullMQ giving up after its retries.
    const ensureAllScheduled = () =>
      queue
        .ensureScheduled(
          hub
            .certificates()
            .filter((c) => c.chain.ocspUrl)
            .map((c) => c.chain.id),
        )
        .catch((error: unknown) =>
          logger.warn({ err: { message: (error as Error).message } }, 'could not re-ensure refresh jobs'),
        );
    const reschedule = setInterval(() => {
      if (hub.loaded) void ensureAllScheduled();
    }, options.rescheduleIntervalMs);
    reschedule.unref();
    cleanups.push(() => clearInterval(reschedule));

    const grpc = await startServiceServer({
      address: options.grpcAddress,
      security: options.security,
      registry,
      logger,
      services: [
        stapleServiceBinding({
          store,
          hub,
          queue,
          clock: options.clock,
          logger,
          defaultHeartbeatIntervalMs: options.heartbeatIntervalMs,
        }),
        secretDiscoveryServiceBinding({
          source: stapleSecretSource({
            hub,
            store,
            privateKeyPathTemplate: options.sdsPrivateKeyPath,
            clock: options.clock,
          }),
          metrics: createSdsMetrics(registry),
          logger,
          clock: options.clock,
        }),
      ],
    });
    cleanups.push(() => grpc.stop(1500));

    let metricsServer: MetricsServer | undefined;
    if (options.metricsAddress) {
      const { host, port } = splitAddress(options.metricsAddress);
      metricsServer = await startMetricsServer(registry, host, port, () => hub.loaded);
      const running = metricsServer;
      cleanups.push(() => running.stop());
    }
    // Live from here on; ready once the registry has been read. A replica
    // started while Redis is down waits for it instead of exiting, so it
    // serves the moment Redis returns.
    grpc.setServing(false);
    const abandon = new AbortController();
    cleanups.push(() => abandon.abort());
    const loading = (async () => {
      for (let attempt = 0; !abandon.signal.aborted; attempt++) {
        try {
          if (redis.status !== 'ready') {
            logger.warn('Redis is unreachable: live but not ready until it answers');
            await waitForReady(redis, abandon.signal);
          }
          await hub.start();
          await ensureAllScheduled();
          if (abandon.signal.aborted) return;
          grpc.setServing(true);
          logger.info({ grpcPort: grpc.port, metricsPort: metricsServer?.port }, 'ocsp-fetch serving');
          return;
        } catch (error) {
          if (abandon.signal.aborted) return;
          logger.warn(
            { err: { message: (error as Error).message }, attempt },
            'loading the registry failed; retrying',
          );
          await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
        }
      }
    })();

    // Like before: when Redis answers at start, the replica is ready when this resolves.
    await Promise.race([
      loading,
      new Promise((resolve) => setTimeout(resolve, startWaitMs).unref()),
      new Promise((resolve) => input.startAbort?.addEventListener('abort', resolve, { once: true })),
    ]);

    let stopped: Promise<void> | undefined;
    return {
      grpcPort: grpc.port,
      metricsPort: metricsServer?.port,
      registry,
      hub,
      ready: () => hub.loaded,
      whenReady: () => loading,
      stop: () => {
        stopped ??= (async () => {
          grpc.setServing(false);
          await cleanUp();
        })();
        return stopped;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
