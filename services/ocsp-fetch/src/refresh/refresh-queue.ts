import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeRedis, settlesWithin, type Logger } from '@keyfleet/service-kit';
import type { OcspRedisKeys } from '../store/redis-keys.js';
import type { StapleRefresher } from './staple-refresher.js';

interface RefreshJobData {
  readonly id: string;
}

/** BullMQ rejects ':' in custom job ids; a certificate id is hex, so this is safe and unique. */
export function refreshJobId(certificateId: string): string {
  return `cert-${certificateId}`;
}

export interface RefreshQueueOptions {
  readonly keys: OcspRedisKeys;
  /** Opens a Redis connection for BullMQ (which needs maxRetriesPerRequest: null). */
  readonly connect: () => Redis;
  readonly refresher: Pick<StapleRefresher, 'refresh'>;
  readonly logger: Logger;
  /** Refresh jobs this replica runs at once (fetches are also limited per responder). */
  readonly workerConcurrency: number;
  /** False: only enqueue (a replica that serves gRPC but fetches nothing). */
  readonly runWorker: boolean;
}

/**
 * One delayed BullMQ job per certificate, with the certificate's id in the
 * job id: adding it again while it exists is a no-op, and a job is locked by
 * one worker while it runs, so each certificate is fetched once per refresh
 * across every replica. After a fetch the same job moves itself back to
 * delayed, due at the time the refresher chose; it ends only when the
 * certificate is unregistered or has no OCSP URL.
 */
export class RefreshQueue {
  readonly #queue: Queue<RefreshJobData>;
  readonly #worker: Worker<RefreshJobData> | undefined;
  readonly #connections: Redis[] = [];
  readonly #logger: Logger;

  constructor(options: RefreshQueueOptions) {
    this.#logger = options.logger;
    const queueConnection = options.connect();
    this.#connections.push(queueConnection);
    this.#queue = new Queue<RefreshJobData>(options.keys.queueName, {
      connection: queueConnection,
      prefix: options.keys.queuePrefix,
    });
    this.#queue.on('error', (error) =>
      options.logger.warn({ err: { message: error.message } }, 'refresh queue error'),
    );
    if (options.runWorker) {
      const workerConnection = options.connect();
      this.#connections.push(workerConnection);
      this.#worker = new Worker<RefreshJobData>(
        options.keys.queueName,
        async (job: Job<RefreshJobData>, token?: string) => {
          const outcome = await options.refresher.refresh(job.data.id);
          if (outcome.kind !== 'scheduled') return outcome.kind;
          await job.moveToDelayed(Date.now() + Math.max(0, outcome.delayMs), token);
          throw new DelayedError();
        },
        {
          connection: workerConnection,
          prefix: options.keys.queuePrefix,
          concurrency: options.workerConcurrency,
          // A job that throws (Redis trouble, a bug) is retried by BullMQ with
          // capped backoff; the periodic re-enqueue catches anything beyond.
          settings: { backoffStrategy: (attemptsMade) => Math.min(60_000, 1000 * 2 ** attemptsMade) },
        },
      );
      this.#worker.on('error', (error) =>
        options.logger.warn({ err: { message: error.message } }, 'refresh worker error'),
      );
      this.#worker.on('failed', (job, error) =>
        options.logger.warn({ job: job?.id, err: { message: error.message } }, 'refresh job failed'),
      );
    }
  }

  /** Ensures each certificate has its job; new ones run at once, existing ones keep their time. */
  async ensureScheduled(certificateIds: readonly string[]): Promise<void> {
    if (certificateIds.length === 0) return;
    await this.#queue.addBulk(
      certificateIds.map((id) => ({
        name: 'refresh',
        data: { id },
        opts: {
          jobId: refreshJobId(id),
          removeOnComplete: true,
          removeOnFail: true,
          attempts: 8,
          backoff: { type: 'custom' },
        },
      })),
    );
  }

  /** Drops a certificate's job; a running one ends by itself when it finds the certificate gone. */
  async unschedule(certificateId: string): Promise<void> {
    try {
      await this.#queue.remove(refreshJobId(certificateId));
    } catch {
      // Locked by a running worker: it will see the certificate is gone.
    }
  }

  /**
   * Stops taking jobs and closes every connection, within about `graceMs` +
   * 0.5 s whatever Redis does. Delayed jobs are never waited for (they live
   * in Redis); a refresh that is running gets `graceMs` to finish. One still
   * running then (a slow responder, Redis unreachable) is cut off: its job
   * stays in Redis, and BullMQ's stalled-job check hands it to a replica once
   * its lock expires (and should BullMQ give up on it, every replica's
   * periodic ensureScheduled adds it again), so no certificate loses its
   * refresh.
   */
  async close(graceMs = 1500): Promise<void> {
    const graceful = (async () => {
      await this.#worker?.close();
      await this.#queue.close();
    })();
    const inTime = await settlesWithin(graceful, graceMs);
    if (!inTime) {
      this.#logger.warn(
        { graceMs },
        'refresh worker did not close in time (a refresh still running, or Redis unreachable): cutting its connections',
      );
    }
    await Promise.all(this.#connections.map((connection) => closeRedis(connection, inTime ? 500 : 0)));
    // Cut connections fail whatever BullMQ still awaited, so its close ends too.
    if (!inTime) await settlesWithin(graceful, 500);
  }
}
