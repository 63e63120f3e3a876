import { ConfigError, type Env } from './config-env.js';
import { createLogger, type Logger } from './logger.js';

/** What a started service gives back: how to stop it. */
export interface StartedService {
  stop(): Promise<void>;
}

export interface ServiceProcessOptions<Config extends { logLevel?: string }> {
  /** Names the process in logs and messages ("ticket-keys"). */
  readonly name: string;
  /** Reads and checks the whole configuration once; throws ConfigError naming the variable. */
  readonly compileConfig: (env: Env) => Config;
  /** `stopping` aborts when a signal arrives while the service is still starting. */
  readonly start: (config: Config, logger: Logger, stopping: AbortSignal) => Promise<StartedService>;
  /**
   * How long SIGTERM waits for a graceful stop before exiting anyway (1),
   * logging that it did. Default 4500: every service is gone within 5 s,
   * what the Kubernetes manifests' terminationGracePeriodSeconds allow.
   */
  readonly forceExitAfterMs?: number;
}

/**
 * The life of a service process: configuration compiled once (a bad value
 * exits 2 with the variable's name, before anything listens), start, and a
 * graceful stop on SIGTERM or SIGINT that exits 0, or 1 if stopping fails or
 * takes longer than `forceExitAfterMs`. A failed start exits 1.
 */
export function runServiceProcess<Config extends { logLevel?: string }>(
  options: ServiceProcessOptions<Config>,
): void {
  let config: Config;
  try {
    config = options.compileConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${options.name}: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(options.name, config.logLevel);
  const starting = new AbortController();
  let service: StartedService | undefined;
  let stopping = false;
  let startedAt = 0;
  const stopAndExit = (started: StartedService) =>
    started.stop().then(
      () => {
        logger.info({ ms: Date.now() - startedAt }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  // Installed before start: a signal that arrives while the service is still
  // starting (say, waiting for a Redis that is down) stops it just the same.
  const shutdown = (signal: string) => {
    // A terminal's Ctrl-C and then a supervisor's SIGTERM is one shutdown.
    if (stopping) return;
    stopping = true;
    startedAt = Date.now();
    const forceExitAfterMs = options.forceExitAfterMs ?? 4500;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ forceExitAfterMs }, 'shutdown did not finish in time: exiting anyway');
      process.exit(1);
    }, forceExitAfterMs).unref();
    starting.abort();
    if (service) void stopAndExit(service);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  options.start(config, logger, starting.signal).then(
    (started) => {
      service = started;
      if (stopping) void stopAndExit(started);
    },
    (error: unknown) => {
      // Stopped before it ever served: nothing to lose.
      if (stopping) process.exit(0);
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ConfigError) console.error(`${options.name}: configuration error: ${message}`);
      else console.error(`${options.name} failed to start: ${message}`);
      process.exit(error instanceof ConfigError ? 2 : 1);
    },
  );
}
