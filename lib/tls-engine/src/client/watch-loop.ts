import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';

export interface WatchLoopOptions<Message> {
  /** Opens a fresh server stream (WatchKeySet, WatchStaples). */
  open(): ClientReadableStream<Message>;
  onMessage(message: Message): void;
  /** Called when a stream ends or fails, before the next attempt. */
  onDisconnect?(error: ServiceError | Error | undefined, nextAttemptInMs: number): void;
  /** First retry delay; doubles per failure up to maxBackoffMs. Default 200. */
  initialBackoffMs?: number;
  /** Default 10000. */
  maxBackoffMs?: number;
  /**
   * A stream that sends nothing (not even a heartbeat) for this long is taken
   * for dead and reopened. Default 15000: three missed 5 s heartbeats.
   */
  idleTimeoutMs?: number;
  /** Injected for tests; default Math.random. */
  random?: () => number;
}

export interface WatchLoop {
  stop(): void;
}

/**
 * Keeps one server stream open for as long as it runs: reopens it after an
 * error, an end or silence, with exponential backoff and full jitter (so a
 * fleet whose service restarts does not reconnect in lockstep), and resets the
 * backoff once a message arrives.
 */
export function startWatchLoop<Message>(options: WatchLoopOptions<Message>): WatchLoop {
  const initial = options.initialBackoffMs ?? 200;
  const max = options.maxBackoffMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 15_000;
  const random = options.random ?? Math.random;
  let failures = 0;
  let stopped = false;
  let stream: ClientReadableStream<Message> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let idleTimer: NodeJS.Timeout | undefined;

  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stream?.cancel(), idleTimeoutMs);
  };

  const connect = () => {
    if (stopped) return;
    const current = options.open();
    stream = current;
    let ended = false;
    armIdle();
    current.on('data', (message: Message) => {
      failures = 0;
      armIdle();
      options.onMessage(message);
    });
    const finish = (error?: ServiceError | Error) => {
      if (ended) return;
      ended = true;
      clearTimeout(idleTimer);
      if (stopped) return;
      const ceiling = Math.min(max, initial * 2 ** failures);
      failures++;
      const delay = Math.round(random() * ceiling);
      options.onDisconnect?.(error, delay);
      retryTimer = setTimeout(connect, delay);
    };
    current.on('error', (error: ServiceError) => finish(error));
    current.on('end', () => finish());
    current.on('close', () => finish());
  };

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(idleTimer);
      stream?.cancel();
    },
  };
}
