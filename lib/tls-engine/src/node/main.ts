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
  let stopping = false;
  const shutdown = (signal: string) => {
    // A terminal's Ctrl-C and then a supervisor's SIGTERM is one shutdown.
    if (stopping) return;
    stopping = true;
    const startedAt = Date.now();
    jsonLogger.info('shutting down', { signal });
    // Connections get shutdownGraceMs; closing the rest never takes long, but
    // a stop that hangs must not outlive the supervisor's grace period.
    const forceExitAfterMs = config.shutdownGraceMs + 1500;
    setTimeout(() => {
      jsonLogger.warn('shutdown did not finish in time: exiting anyway', { forceExitAfterMs });
      process.exit(1);
    }, forceExitAfterMs).unref();
    node.stop().then(
      () => {
        jsonLogger.info('stopped', { ms: Date.now() - startedAt });
        process.exit(0);
      },
      (error: unknown) => {
        jsonLogger.warn('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `keyfleet engine node failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
