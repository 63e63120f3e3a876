/**
 * The ticket-key service process: configuration from the environment (once;
 * a bad value exits naming the variable), gRPC on KEYFLEET_GRPC_ADDRESS,
 * /metrics and /healthz on KEYFLEET_METRICS_ADDRESS, graceful shutdown on
 * SIGTERM/SIGINT.
 */
import { ConfigError, createLogger, startMetricsServer } from '@keyfleet/service-kit';
import { compileTicketKeysConfig } from './config/ticket-keys-config.js';
import { createTicketKeysServer } from './server/ticket-keys-server.js';
import { createTicketServiceBinding } from './keyless/ticket-service-binding.js';
import { ensureDevKekFile, loadKekFile } from './store/kek.js';

async function main(): Promise<void> {
  let config;
  try {
    config = compileTicketKeysConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`ticket-keys: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger('ticket-keys', config.logLevel);
  let kekFile: string;
  if ('file' in config.kek) {
    kekFile = config.kek.file;
  } else {
    const dev = ensureDevKekFile(config.kek.generateInDir);
    kekFile = dev.path;
    logger.warn(
      { kekFile, created: dev.created },
      'KEYFLEET_INSECURE_DEV without KEYFLEET_KEK_FILE: using a development KEK from the state directory',
    );
  }
  const keks = loadKekFile(kekFile);

  const service = await createTicketKeysServer({
    redisUrl: config.redisUrl,
    keks,
    security: config.security,
    address: config.grpcAddress,
    keyPrefix: config.keyPrefix,
    bootstrapRings: config.bootstrapRings,
    logger,
    // Keyless mode: nodes that hold no keys seal and open through this replica,
    // with the same codec and policies as a node that does.
    extraServices: ({ keySetSource, registry }) => [
      createTicketServiceBinding(keySetSource, { metrics: registry }),
    ],
  });
  const metrics = await startMetricsServer(service.registry, config.metricsHost, config.metricsPort, () =>
    service.redisReady(),
  );
  logger.info(
    { grpc: config.grpcAddress, grpcPort: service.port, metrics: `${config.metricsHost}:${metrics.port}` },
    'ticket-keys serving',
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    Promise.all([service.stop(3000), metrics.stop()])
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(`ticket-keys: configuration error: ${error.message}`);
  else console.error('ticket-keys failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
