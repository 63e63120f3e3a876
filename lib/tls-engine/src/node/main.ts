/**
 * The runnable engine node: `tsx lib/tls-engine/src/node/main.ts`, configured
 * by KEYFLEET_* variables (see node-config.ts). A bad value exits 2 with a
 * message naming the variable; SIGTERM or SIGINT stops gracefully.
 */
import { compileEngineNodeConfig, ConfigError } from './node-config.js';
import { jsonLogger, startEngineNode } from './engine-node.js';

async function main(): Promise<void> {
  let config;
  try {
    config = compileEngineNodeConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`keyfleet engine node: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const node = await startEngineNode(config);
  const shutdown = (signal: string) => {
    jsonLogger.info('shutting down', { signal });
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        jsonLogger.warn('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `keyfleet engine node failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
