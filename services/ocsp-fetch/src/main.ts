/**
 * The ocsp-fetch process: configuration from the environment (compiled once;
 * a bad value stops the process with the variable's name), one replica of the
 * service, graceful shutdown on SIGTERM or SIGINT.
 */
import { ConfigError, createLogger } from '@keyfleet/service-kit';
import { compileOcspFetchConfig } from './config/ocsp-fetch-config.js';
import { createOcspFetchServer } from './ocsp-fetch-server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = compileOcspFetchConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`ocsp-fetch: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger('ocsp-fetch', config.logLevel);
  const server = await createOcspFetchServer({ ...config.server, logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(`ocsp-fetch: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
