/**
 * The ticket-key service process: configuration from the environment (once;
 * a bad value exits naming the variable), gRPC on KEYFLEET_GRPC_ADDRESS with
 * TicketKeyService and the keyless TicketService, /metrics and /healthz on
 * KEYFLEET_METRICS_ADDRESS, graceful shutdown on SIGTERM/SIGINT.
 */
import { runServiceProcess, startMetricsServer } from '@keyfleet/service-kit';
import { compileTicketKeysConfig } from './config/ticket-keys-config.js';
import { createTicketKeysServer } from './server/ticket-keys-server.js';
import { createTicketServiceBinding } from './keyless/ticket-service-binding.js';
import { ensureDevKekFile, loadKekFile } from './store/kek.js';

runServiceProcess({
  name: 'ticket-keys',
  compileConfig: compileTicketKeysConfig,
  async start(config, logger) {
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
    const service = await createTicketKeysServer({
      redisUrl: config.redisUrl,
      keks: loadKekFile(kekFile),
      security: config.security,
      address: config.grpcAddress,
      keyPrefix: config.keyPrefix,
      bootstrapRings: config.bootstrapRings,
      logger,
      // Keyless mode: nodes that hold no keys seal and open through this
      // replica, with the same codec and policies as a node that does.
      extraServices: ({ keySetSource, registry }) => [
        createTicketServiceBinding(keySetSource, { metrics: registry }),
      ],
    });
    const metrics = await startMetricsServer(service.registry, config.metricsHost, config.metricsPort, () =>
      service.ready(),
    );
    logger.info(
      { grpc: config.grpcAddress, grpcPort: service.port, metrics: `${config.metricsHost}:${metrics.port}` },
      'ticket-keys serving',
    );
    return { stop: () => Promise.all([service.stop(1500), metrics.stop()]).then(() => undefined) };
  },
});
