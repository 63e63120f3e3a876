import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { settlesWithin, type Logger } from '@keyfleet/service-kit';
import type { RotateOutcome } from '../store/key-store.js';

/** The rotation job's payload: only the ring name (no key material ever goes to BullMQ). */
interface RotationJobData {
  ring: string;
}

export interface RotationSchedulerOptions {
  /**
   * A connection for BullMQ (it needs maxRetriesPerRequest: null); the worker
   * duplicates it for its blocking reads.
   */
  readonly connection: Redis;
  /** BullMQ's key prefix, from redis-keys.ts. */
  readonly prefix: string;
  /** Rotates the ring if it is due (the store's rotate with onlyIfDue). */
  readonly rotateIfDue: (ring: string) => Promise<RotateOutcome>;
  readonly onOutcome?: (ring: string, result: 'ok' | 'skipped' | 'error') => void;
  readonly logger: Logger;
}

export const rotationQueueName = 'ticket-key-rotation';

/**
 * One BullMQ job scheduler per ring (`every: rotationIntervalMs`) on a queue
 * every replica shares, and one worker per replica: each firing is one job,
 * taken by one worker, so one rotation per interval runs however many
 * replicas run. The job re-checks that a rotation is due (the newest key is
 * at least an interval old) and rotates with a compare-and-set on the epoch
 * it read, so duplicate firings (every replica upserting at start, a manual
 * Rotate just before) and catch-up after downtime rotate once.
 */
export class RotationScheduler {
  private readonly queue: Queue<RotationJobData>;
  private readonly worker: Worker<RotationJobData>;
  private readonly logger: Logger;

  constructor(options: RotationSchedulerOptions) {
    this.logger = options.logger;
    const common = { connection: options.connection, prefix: options.prefix };
    this.queue = new Queue<RotationJobData>(rotationQueueName, common);
    this.worker = new Worker<RotationJobData>(
      rotationQueueName,
      async (job: Job<RotationJobData>) => {
        const { ring } = job.data;
        try {
          const outcome = await options.rotateIfDue(ring);
          options.onOutcome?.(ring, outcome.result);
          if (outcome.result === 'ok') {
            this.logger.info({ ring, epoch: outcome.state.epoch }, 'scheduled rotation');
          }
          return outcome.result;
        } catch (error) {
          options.onOutcome?.(ring, 'error');
          throw error;
        }
      },
      { ...common, concurrency: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    );
    // BullMQ emits errors while Redis is away; it reconnects by itself.
    const warn = (error: Error) =>
      this.logger.warn({ err: { message: error.message } }, 'rotation queue error');
    this.queue.on('error', warn);
    this.worker.on('error', warn);
    this.worker.on('failed', (job, error) =>
      this.logger.warn(
        { ring: job?.data.ring, err: { message: error.message } },
        'scheduled rotation failed',
      ),
    );
  }

  /** Creates or updates the ring's scheduler (idempotent: every replica calls it). */
  async ensure(ring: string, rotationIntervalMs: number): Promise<void> {
    await this.queue.upsertJobScheduler(
      `rotate:${ring}`,
      { every: rotationIntervalMs },
      {
        name: 'rotate',
        data: { ring },
        opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
  }

  /**
   * Stops taking jobs; a rotation that is running gets `graceMs` to finish
   * (delayed and scheduled jobs live in Redis and are never waited for).
   * Resolves false when that did not happen in time (Redis unreachable): the
   * caller then cuts the connections, which ends BullMQ's close too.
   */
  async close(graceMs = 1500): Promise<boolean> {
    const graceful = (async () => {
      await this.worker.close();
      await this.queue.close();
    })();
    const inTime = await settlesWithin(graceful, graceMs);
    if (!inTime)
      this.logger.warn({ graceMs }, 'rotation worker did not close in time: cutting its connections');
    return inTime;
  }
}
