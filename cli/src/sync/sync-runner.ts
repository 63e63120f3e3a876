import type {
  CertificateRecord,
  KeySet,
  StapleServiceClient,
  TicketKeyServiceClient,
  WatchKeySetResponse,
  WatchStaplesResponse,
} from '@keyfleet/proto';
import { startWatchLoop, type WatchLoop } from '@keyfleet/tls-engine';
import type { SyncMetrics } from './sync-metrics.js';
import type { ApplyReport, SyncTarget } from './sync-target.js';
import { nextTransitionMs } from '@keyfleet/tls-engine';

/** One line of the sidecar's log: an event name and public facts only. */
export type SyncEvent = { event: string } & Record<string, unknown>;

export interface SyncRunnerOptions {
  readonly target: SyncTarget;
  /** Follow this ring's keys; undefined: keys are not synced. */
  readonly ring: string | undefined;
  readonly ticketKeys: Pick<TicketKeyServiceClient, 'watchKeySet' | 'ackKeySet'> | undefined;
  /** Follow staples; undefined: staples are not synced. */
  readonly staples: Pick<StapleServiceClient, 'watchStaples'> | undefined;
  /** Certificate ids to watch; empty: every registered certificate. */
  readonly certificateIds: readonly string[];
  readonly nodeId: string;
  readonly clock: () => number;
  readonly log: (event: SyncEvent) => void;
  /** Applied epoch, last success and failure, reload failures, staple ages. Default: none. */
  readonly metrics?: SyncMetrics;
}

export interface SyncRunner {
  /** Resolves once every apply started so far has finished (tests, shutdown). */
  settled(): Promise<void>;
  stop(): void;
}

/**
 * Follows WatchKeySet and WatchStaples (reconnecting through startWatchLoop)
 * and applies what arrives to one terminator. Applies run one at a time and
 * always use the newest message, and the runner applies again by itself when
 * a key activates or expires or a staple passes its nextUpdate, because the
 * files are a function of the time as well as of the set. After a key set is
 * in place it acknowledges the epoch, so the service's ack coverage counts
 * this terminator too. A reload that fails is a failed apply: the terminator
 * still runs the old files, so the epoch is not acknowledged, and the apply
 * (reload included) is retried with backoff.
 */
export function startSyncRunner(options: SyncRunnerOptions): SyncRunner {
  const loops: WatchLoop[] = [];
  let keySet: KeySet | undefined;
  const certificates = new Map<string, CertificateRecord>();
  let chain: Promise<void> = Promise.resolve();
  let keyTimer: NodeJS.Timeout | undefined;
  let stapleTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const report = (what: string, result: ApplyReport) => {
    if (result.changedFiles.length === 0 && result.liveUpdates.length === 0) return;
    options.log({
      event: `${what} applied`,
      target: options.target.kind,
      changedFiles: result.changedFiles,
      liveUpdates: result.liveUpdates,
      ...(result.reloaded ? { reloaded: result.reloaded.ok, reloadOutput: result.reloaded.output } : {}),
      ...(result.droppedKeyNames.length ? { droppedKeyNames: result.droppedKeyNames } : {}),
    });
    if (result.reloaded && !result.reloaded.ok) {
      options.log({ event: 'reload failed', target: options.target.kind, output: result.reloaded.output });
      options.metrics?.reloadFailed();
      throw new Error(`${what}: the reload failed`);
    }
  };
  // Timers are capped so a far-off transition is re-checked after clock jumps.
  const armTimer = (at: number | undefined, run: () => void): NodeJS.Timeout | undefined =>
    at === undefined
      ? undefined
      : setTimeout(run, Math.min(Math.max(at - options.clock(), 0) + 5, 3_600_000));
  const enqueue = (step: () => Promise<void>) => {
    chain = chain
      .then(step)
      .catch((error: Error) => options.log({ event: 'apply failed', error: error.message }));
  };

  // A failed apply (a full disk, HAProxy restarting) is retried on its own:
  // the stream may stay quiet for an hour, the terminator must not.
  const retryDelayMs = (failures: number) => Math.min(1000 * 2 ** failures, 60_000);
  let keyFailures = 0;
  let stapleFailures = 0;

  const applyKeys = () =>
    enqueue(async () => {
      if (stopped || !keySet) return;
      const current = keySet;
      const nowMs = options.clock();
      clearTimeout(keyTimer);
      try {
        report('key set', await options.target.applyKeySet(current, nowMs));
      } catch (error) {
        options.metrics?.failed('keys', options.clock());
        keyTimer = setTimeout(applyKeys, retryDelayMs(keyFailures++));
        throw error;
      }
      keyFailures = 0;
      options.metrics?.succeeded('keys', options.clock());
      options.metrics?.keySetApplied(current.ring, current.epoch);
      keyTimer = armTimer(nextTransitionMs(current, nowMs), applyKeys);
      options.ticketKeys?.ackKeySet(
        { ring: current.ring, nodeId: options.nodeId, epoch: current.epoch },
        (error) => error && options.log({ event: 'ack failed', ring: current.ring, error: error.message }),
      );
    });

  const applyStaples = () =>
    enqueue(async () => {
      if (stopped) return;
      const nowMs = options.clock();
      const records = [...certificates.values()];
      clearTimeout(stapleTimer);
      try {
        report('staples', await options.target.applyStaples(records, nowMs));
      } catch (error) {
        options.metrics?.failed('staples', options.clock());
        stapleTimer = setTimeout(applyStaples, retryDelayMs(stapleFailures++));
        throw error;
      }
      stapleFailures = 0;
      options.metrics?.succeeded('staples', options.clock());
      options.metrics?.staplesApplied(records);
      const expiries = records.map((record) => record.staple?.nextUpdateMs ?? 0).filter((at) => at > nowMs);
      stapleTimer = armTimer(expiries.length ? Math.min(...expiries) : undefined, applyStaples);
    });

  const disconnected = (stream: string) => (error: Error | undefined, nextAttemptInMs: number) =>
    options.log({ event: 'stream disconnected', stream, error: error?.message, nextAttemptInMs });

  if (options.ring && options.ticketKeys) {
    const client = options.ticketKeys;
    const ring = options.ring;
    loops.push(
      startWatchLoop<WatchKeySetResponse>({
        open: () => client.watchKeySet({ ring, nodeId: options.nodeId, heartbeatIntervalMs: 0 }),
        onMessage: (message) => {
          if (!message.keySet) return;
          // Epochs only move forward: an older set (a replica serving a stale
          // Redis) would take keys away that the rest of the fleet still uses.
          if (keySet && message.keySet.epoch < keySet.epoch) {
            options.log({
              event: 'older key set ignored',
              ring,
              epoch: message.keySet.epoch,
              held: keySet.epoch,
            });
            return;
          }
          if (message.keySet.epoch !== keySet?.epoch) {
            options.log({ event: 'key set received', ring, epoch: message.keySet.epoch });
          }
          keySet = message.keySet;
          applyKeys();
        },
        onDisconnect: disconnected('WatchKeySet'),
      }),
    );
  }
  if (options.staples) {
    const client = options.staples;
    loops.push(
      startWatchLoop<WatchStaplesResponse>({
        open: () =>
          client.watchStaples({
            ids: [...options.certificateIds],
            nodeId: options.nodeId,
            heartbeatIntervalMs: 0,
          }),
        onMessage: (message) => {
          if (message.snapshot) {
            options.log({ event: 'staple snapshot', certificates: message.snapshot.certificates.length });
            certificates.clear();
            for (const record of message.snapshot.certificates) certificates.set(record.id, record);
          } else if (message.updated) {
            certificates.set(message.updated.id, message.updated);
          } else if (message.removedId) {
            certificates.delete(message.removedId);
          } else {
            return;
          }
          applyStaples();
        },
        onDisconnect: disconnected('WatchStaples'),
      }),
    );
  }

  return {
    settled: () => chain,
    stop() {
      stopped = true;
      clearTimeout(keyTimer);
      clearTimeout(stapleTimer);
      for (const loop of loops) loop.stop();
    },
  };
}
