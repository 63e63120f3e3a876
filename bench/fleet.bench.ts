// Fleet consistency: engine instances, each with its own
// KeySetProvider on its own gRPC connection to one of two ticket-keys replicas
// sharing a real Redis, a rotation every second, tickets sealed on random nodes
// and opened on other random nodes. Reports NO_DECRYPT inside the lifetime
// (must be zero) and USE vs USE_RENEW disagreement between two nodes opening
// the same ticket at the same moment, split into inside and outside the
// configured clock-skew window around a key activation. The e2e test
// test/fleet-consistency.e2e.test.ts runs this shorter and asserts on it.
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  TicketDecision,
  TicketKeyServiceClient,
  TicketStatus,
  type PutRingRequest,
  type PutRingResponse,
  type RotateRequest,
  type RotateResponse,
} from '@keyfleet/proto';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTicketEngine,
  KeySetProvider,
  NoActiveKeyError,
  type TicketEngine,
} from '@keyfleet/tls-engine';
import {
  createTicketKeysServer,
  newKekLine,
  parseKekFile,
  redisKeys,
  type RunningTicketKeysServer,
} from '@keyfleet/ticket-keys';
import { randomPrefix, startRedis } from '@keyfleet/test-support';
import { figure, type BenchFigure } from './bench-figure.js';

export interface FleetRunOptions {
  /** Engine instances (nodes). Default 8. */
  nodes?: number;
  /** How long tickets are sealed and opened. Default 60000. */
  durationMs?: number;
  /** A rotation (admin Rotate, alternating replicas) this often. Default 1000. */
  rotationEveryMs?: number;
  /** The ring's propagation_ms, scaled down with the rotation. Default 500. */
  propagationMs?: number;
  /** The ring's decrypt_window_ms, which is also the tickets' lifetime hint. Default 10000. */
  decryptWindowMs?: number;
  /** Node clocks are offset by up to ± skewMs / 2 from the true time. Default 40. */
  skewMs?: number;
}

export interface FleetRunResult {
  readonly nodes: number;
  readonly rotations: number;
  readonly sealed: number;
  readonly opened: number;
  /** Opens of tickets younger than their lifetime hint (less a second) that were NO_DECRYPT. */
  readonly noDecryptWithinLifetime: number;
  /** Pairs of nodes opening the same ticket at the same moment. */
  readonly comparisons: number;
  readonly disagreements: number;
  /** Disagreements with no key activation within ± skewMs of the moment. */
  readonly disagreementsOutsideSkewWindow: number;
  readonly sealFailures: number;
  /** Rotations whose epoch did not reach every node (a node may skip an epoch it was never sent). */
  readonly epochsMissedByANode: number;
  /** Time for the warm-up rotation through replica 0, then replica 1, to reach every node. */
  readonly warmUpFanOutMs: readonly number[];
  /** Delay from a Rotate call to the last node holding the new epoch, p50 / max. */
  readonly fanOutP50Ms: number;
  readonly fanOutMaxMs: number;
  readonly problems: readonly string[];
}

const RING = 'fleet';

export async function runFleetConsistency(options: FleetRunOptions = {}): Promise<FleetRunResult> {
  const nodeCount = options.nodes ?? 8;
  const durationMs = options.durationMs ?? 60_000;
  const rotationEveryMs = options.rotationEveryMs ?? 1000;
  const propagationMs = options.propagationMs ?? 500;
  const decryptWindowMs = options.decryptWindowMs ?? 10_000;
  const skewMs = options.skewMs ?? 40;

  const redis = await startRedis();
  const keyPrefix = randomPrefix('fleet');
  const keks = parseKekFile(newKekLine('fleet-kek'));
  const logger = createLogger('fleet', process.env.TEST_LOG_LEVEL ?? 'silent');
  const replicas: RunningTicketKeysServer[] = [];
  const clients: TicketKeyServiceClient[] = [];
  const providers: KeySetProvider[] = [];
  const engines: TicketEngine[] = [];
  const problems: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await createTicketKeysServer({
          redisUrl: redis.url,
          keyPrefix,
          keks,
          security: insecureDevSecurity(),
          registry: new Registry(),
          logger,
          runScheduler: false,
        }),
      );
    }
    // Each client gets its own connection, so every node really has its own stream.
    const connect = (replica: RunningTicketKeysServer) => {
      const client = new TicketKeyServiceClient(
        `127.0.0.1:${replica.port}`,
        grpc.credentials.createInsecure(),
        {
          'grpc.use_local_subchannel_pool': 1,
        },
      );
      clients.push(client);
      return client;
    };
    const admins = replicas.map(connect);
    const unary = <Req, Res>(
      client: TicketKeyServiceClient,
      method: 'putRing' | 'rotate',
      request: Req,
    ): Promise<Res> =>
      new Promise((resolve, reject) =>
        (
          client[method] as unknown as (
            this: TicketKeyServiceClient,
            r: Req,
            cb: (e: grpc.ServiceError | null, r: Res) => void,
          ) => unknown
        ).call(client, request, (error, response) => (error ? reject(error) : resolve(response))),
      );
    const put = await unary<PutRingRequest, PutRingResponse>(admins[0]!, 'putRing', {
      params: {
        ring: RING,
        rotationIntervalMs: Math.max(1000, rotationEveryMs),
        propagationMs,
        decryptWindowMs,
        ticketLifetimeMs: 0,
        maxSessionAgeMs: 0,
        bindServerName: false,
        promoteOnFullAck: false,
      },
    });

    // A frozen instant lets two nodes open a ticket at "the same moment"; each adds its own skew.
    let frozenMs: number | undefined;
    const trueNow = () => frozenMs ?? Date.now();
    const skews = Array.from({ length: nodeCount }, (_, i) =>
      nodeCount === 1 ? 0 : Math.round(-skewMs / 2 + (skewMs * i) / (nodeCount - 1)),
    );
    const arrivals = new Map<number, number[]>();
    for (let i = 0; i < nodeCount; i++) {
      const provider = new KeySetProvider({
        ring: RING,
        client: connect(replicas[i % 2]!),
        nodeId: `node-${i}`,
        clock: () => trueNow() + skews[i]!,
        heartbeatIntervalMs: 200,
        initialBackoffMs: 50,
        maxBackoffMs: 1000,
        onProblem: (problem) => problems.push(`node-${i}: ${problem}`),
      });
      provider.addListener((keys) => {
        const seen = arrivals.get(keys.epoch) ?? [];
        seen.push(Date.now());
        arrivals.set(keys.epoch, seen);
      });
      providers.push(provider);
      engines.push(
        createTicketEngine({
          ring: RING,
          keys: provider,
          clock: () => trueNow() + skews[i]!,
          metrics: new Registry(),
        }),
      );
    }
    const deadline = Date.now() + 15_000;
    while (!providers.every((p) => (p.current()?.epoch ?? 0) >= put.epoch)) {
      if (Date.now() > deadline) throw new Error('nodes did not receive the first key set');
      await sleep(20);
    }

    // Warm-up: one rotation through each replica, waiting until every node holds it, so the run
    // starts with fan-out proven in both directions. Its delays are reported, not hidden.
    const replicaEpochs = () => replicas.map((r) => r.keySetSource.current(RING)?.epoch).join('/');
    const warmUpFanOutMs: number[] = [];
    for (const admin of admins) {
      const startedAt = Date.now();
      const response = await unary<RotateRequest, RotateResponse>(admin, 'rotate', {
        ring: RING,
        reason: 'warm-up',
      });
      const epoch = response.keySet?.epoch ?? 0;
      while (!providers.every((p) => (p.current()?.epoch ?? 0) >= epoch)) {
        if (Date.now() - startedAt > 15_000) {
          const held = providers.map((p, i) => `node-${i}@${p.current()?.epoch}`).join(' ');
          // How many replicas subscribe to the change channel tells a lost subscription from a lost message.
          const subscribers = spawnSync(
            'redis-cli',
            ['-p', String(redis.port), 'PUBSUB', 'NUMSUB', redisKeys(keyPrefix).changesChannel],
            { encoding: 'utf8' },
          ).stdout.replace(/\s+/g, ' ');
          throw new Error(
            `warm-up rotation to epoch ${epoch} did not reach every node in 15 s: ${held}; ` +
              `replicas hold ${replicaEpochs()}; PUBSUB NUMSUB ${subscribers}`,
          );
        }
        await sleep(5);
      }
      warmUpFanOutMs.push(Date.now() - startedAt);
    }

    // Rotations in the background, alternating replicas.
    const rotatedAt = new Map<number, number>();
    let rotations = 0;
    let running = true;
    const rotator = (async () => {
      let next = Date.now() + rotationEveryMs;
      while (running) {
        await sleep(Math.max(0, next - Date.now()));
        next += rotationEveryMs;
        if (!running) break;
        const startedAt = Date.now();
        try {
          const response = await unary<RotateRequest, RotateResponse>(admins[rotations % 2]!, 'rotate', {
            ring: RING,
            reason: 'fleet consistency',
          });
          rotatedAt.set(response.keySet?.epoch ?? 0, startedAt);
          rotations++;
        } catch (error) {
          problems.push(`rotate failed: ${(error as Error).message}`);
        }
      }
    })();

    const pick = (exclude = -1) => {
      let index: number;
      do index = Math.floor(Math.random() * nodeCount);
      while (index === exclude && nodeCount > 1);
      return index;
    };
    const live: { ticket: Uint8Array; sealedAtMs: number; lifetimeMs: number; by: number }[] = [];
    let sealed = 0;
    let opened = 0;
    let noDecryptWithinLifetime = 0;
    let comparisons = 0;
    let disagreements = 0;
    let disagreementsOutsideSkewWindow = 0;
    let sealFailures = 0;
    const endAt = Date.now() + durationMs;
    while (Date.now() < endAt) {
      const sealer = pick();
      try {
        const generated = engines[sealer]!.generate(randomBytes(64), randomBytes(16));
        live.push({
          ticket: generated.ticket,
          sealedAtMs: Date.now(),
          lifetimeMs: generated.lifetimeHintMs,
          by: sealer,
        });
        sealed++;
      } catch (error) {
        if (!(error instanceof NoActiveKeyError)) throw error;
        sealFailures++;
      }
      const now = Date.now();
      while (live.length > 0 && now - live[0]!.sealedAtMs > live[0]!.lifetimeMs - 1000) live.shift();
      for (let k = 0; k < 4 && live.length > 0; k++) {
        const sample = live[Math.floor(Math.random() * live.length)]!;
        const first = pick(sample.by);
        const second = pick(first);
        frozenMs = Date.now();
        const a = engines[first]!.decrypt(sample.ticket);
        const b = engines[second]!.decrypt(sample.ticket);
        const moment = frozenMs;
        frozenMs = undefined;
        opened += 2;
        comparisons++;
        noDecryptWithinLifetime +=
          Number(a.status === TicketStatus.NO_DECRYPT) + Number(b.status === TicketStatus.NO_DECRYPT);
        if (a.status === TicketStatus.NO_DECRYPT || b.status === TicketStatus.NO_DECRYPT) {
          problems.push(
            `NO_DECRYPT (replicas hold ${replicaEpochs()}) at age ${moment - sample.sealedAtMs} ms sealed by node-${sample.by}: ` +
              `node-${first} reason ${a.reason} epoch ${a.epoch}, node-${second} reason ${b.reason} epoch ${b.epoch}`,
          );
        }
        const resumes = (d: TicketDecision) => d === TicketDecision.USE || d === TicketDecision.USE_RENEW;
        if (a.decision !== b.decision && resumes(a.decision) && resumes(b.decision)) {
          disagreements++;
          const activations = [providers[first]!, providers[second]!].flatMap(
            (p) => p.current()?.schedule.keys.map((key) => key.activatesAtMs) ?? [],
          );
          if (!activations.some((at) => Math.abs(at - moment) <= skewMs)) {
            disagreementsOutsideSkewWindow++;
            problems.push(
              `disagreement outside the skew window (replicas hold ${replicaEpochs()}): node-${first} epoch ${a.epoch} (staleness ${providers[first]!.stalenessMs()} ms), ` +
                `node-${second} epoch ${b.epoch} (staleness ${providers[second]!.stalenessMs()} ms)`,
            );
          }
        }
      }
      await sleep(2);
    }
    running = false;
    await rotator;
    // Let the last rotation reach every node before counting which epochs missed one.
    const lastEpoch = Math.max(0, ...rotatedAt.keys());
    const settleBy = Date.now() + 3000;
    while (Date.now() < settleBy && !providers.every((p) => (p.current()?.epoch ?? 0) >= lastEpoch)) {
      await sleep(10);
    }

    // An epoch some node never received (it may have skipped straight to a later one) counts as
    // missing; fan-out is measured over the epochs every node applied.
    const fanOuts: number[] = [];
    let epochsMissedByANode = 0;
    for (const [epoch, at] of rotatedAt) {
      const seen = arrivals.get(epoch) ?? [];
      if (seen.length === nodeCount) fanOuts.push(Math.max(0, Math.max(...seen) - at));
      else epochsMissedByANode++;
    }
    fanOuts.sort((x, y) => x - y);
    return {
      nodes: nodeCount,
      rotations,
      sealed,
      opened,
      noDecryptWithinLifetime,
      comparisons,
      disagreements,
      disagreementsOutsideSkewWindow,
      sealFailures,
      epochsMissedByANode,
      warmUpFanOutMs,
      fanOutP50Ms: fanOuts[fanOuts.length >> 1] ?? NaN,
      fanOutMaxMs: fanOuts.at(-1) ?? NaN,
      problems: [...new Set(problems)].slice(0, 50),
    };
  } finally {
    for (const engine of engines) engine.close();
    for (const provider of providers) provider.close();
    for (const client of clients) client.close();
    await Promise.all(replicas.map((replica) => replica.stop(500)));
    await redis.stop();
  }
}

export default async function run(): Promise<BenchFigure[]> {
  const options = {
    durationMs: Number(process.env.FLEET_DURATION_MS ?? 60_000),
    rotationEveryMs: 1000,
    propagationMs: 500,
  };
  const result = await runFleetConsistency(options);
  for (const problem of result.problems) console.error(`fleet: ${problem}`);
  const f = (metric: string, value: number, unit: string, baseline: number) =>
    figure('fleet', metric, value, unit, baseline);
  return [
    f('nodes, each its own WatchKeySet stream (baseline: replicas)', result.nodes, 'count', 2),
    f(
      'rotations (baseline: one per second planned)',
      result.rotations,
      'count',
      Math.floor(options.durationMs / options.rotationEveryMs),
    ),
    f('tickets opened (baseline: sealed)', result.opened, 'count', result.sealed),
    f(
      'NO_DECRYPT within ticket lifetime (baseline: opens)',
      result.noDecryptWithinLifetime,
      'count',
      result.opened,
    ),
    f(
      'USE vs USE_RENEW disagreements, same ticket and moment (baseline: comparisons)',
      result.disagreements,
      'count',
      result.comparisons,
    ),
    f(
      'disagreements outside the clock-skew window (baseline: comparisons)',
      result.disagreementsOutsideSkewWindow,
      'count',
      result.comparisons,
    ),
    f(
      'warm-up rotation via replica 0 to all nodes (baseline: propagationMs)',
      result.warmUpFanOutMs[0] ?? NaN,
      'ms',
      options.propagationMs,
    ),
    f(
      'warm-up rotation via replica 1 to all nodes (baseline: propagationMs)',
      result.warmUpFanOutMs[1] ?? NaN,
      'ms',
      options.propagationMs,
    ),
    f(
      'rotations whose epoch missed a node (baseline: rotations)',
      result.epochsMissedByANode,
      'count',
      result.rotations,
    ),
    f(
      'key-set fan-out to all nodes p50 (baseline: propagationMs)',
      result.fanOutP50Ms,
      'ms',
      options.propagationMs,
    ),
    f(
      'key-set fan-out to all nodes max (baseline: propagationMs)',
      result.fanOutMaxMs,
      'ms',
      options.propagationMs,
    ),
  ];
}
