// Keyless OpenTicket over gRPC on loopback: p50/p99 latency and calls per
// second with 64 calls in flight, against grpc.health.v1 Check on the same
// server and channel at the same concurrency (the cost of a gRPC round trip
// with no work), measured in the same run.
//
// Method (changed): the two loads alternate in rounds of roundMs (after a
// warm-up of each), the first of the pair switching every round, and the
// calls/s figures are the medians over the rounds, latencies pooled. Before,
// one 5 s run of Check was followed by one of OpenTicket, and a drift of the
// machine between the two moved the ratio from 0.6 to 0.95 across runs.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { Registry } from 'prom-client';
import { KeySet, TicketServiceClient, TicketDecision } from '@keyfleet/proto';
import { createLogger, insecureDevSecurity, startServiceServer } from '@keyfleet/service-kit';
import { figure as benchFigure, percentile, type BenchFigure } from './bench-figure.js';
import { createTicketServiceBinding } from '../services/ticket-keys/src/keyless/ticket-service-binding.js';

const CONCURRENCY = 64;
const roundMs = Number(process.env.BENCH_KEYLESS_MS ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 6);

/** Runs `call` with CONCURRENCY in flight for `ms`; latencies in ms. */
async function load(
  call: () => Promise<void>,
  ms: number,
): Promise<{ latencies: number[]; callsPerSecond: number }> {
  const latencies: number[] = [];
  const start = performance.now();
  const endAt = start + ms;
  const worker = async () => {
    while (performance.now() < endAt) {
      const callStart = performance.now();
      await call();
      latencies.push(performance.now() - callStart);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { latencies, callsPerSecond: latencies.length / ((performance.now() - start) / 1000) };
}

/** Both loads in alternating rounds: medians of calls/s, latencies pooled. */
async function alternate(loads: Record<'baseline' | 'keyless', () => Promise<void>>) {
  for (const call of Object.values(loads)) await load(call, 500); // warm-up
  const runs = { baseline: [] as number[], keyless: [] as number[] };
  const latencies = { baseline: [] as number[], keyless: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['baseline', 'keyless'] as const) : (['keyless', 'baseline'] as const);
    for (const name of order) {
      const result = await load(loads[name], roundMs);
      runs[name].push(result.callsPerSecond);
      latencies[name].push(...result.latencies);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  return {
    baseline: { callsPerSecond: median(runs.baseline), latencies: latencies.baseline },
    keyless: { callsPerSecond: median(runs.keyless), latencies: latencies.keyless },
  };
}

export default async function run(): Promise<BenchFigure[]> {
  const ring = 'bench';
  const keySet = KeySet.fromPartial({
    ring,
    epoch: 1,
    params: { ring, decryptWindowMs: 43_200_000 },
    keys: [{ name: randomBytes(16), secret: randomBytes(32), publishedAtMs: 0, activatesAtMs: 0 }],
  });
  const server = await startServiceServer({
    address: '127.0.0.1:0',
    security: insecureDevSecurity(),
    services: [createTicketServiceBinding({ current: (name) => (name === ring ? keySet : undefined) })],
    registry: new Registry(),
    logger: createLogger('keyless-bench', 'silent'),
  });
  const client = new TicketServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const health = new Health(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as {
    check(request: { service: string }, callback: (error: grpc.ServiceError | null) => void): void;
    close(): void;
  };
  try {
    const tickets = await Promise.all(
      Array.from(
        { length: 64 },
        () =>
          new Promise<Buffer>((resolve, reject) =>
            client.sealTicket(
              { ring, session: randomBytes(256), appdata: randomBytes(64), context: undefined },
              (error, response) => (error ? reject(error) : resolve(response.ticket)),
            ),
          ),
      ),
    );
    let next = 0;
    const open = () =>
      new Promise<void>((resolve, reject) =>
        client.openTicket(
          { ring, ticket: tickets[next++ % tickets.length]!, context: undefined },
          (error, response) =>
            error
              ? reject(error)
              : response.decision === TicketDecision.USE
                ? resolve()
                : reject(new Error(`unexpected decision ${response.decision}`)),
        ),
      );
    const check = () =>
      new Promise<void>((resolve, reject) =>
        health.check({ service: '' }, (error) => (error ? reject(error) : resolve())),
      );
    const { baseline, keyless } = await alternate({ baseline: check, keyless: open });
    const figure = (metric: string, value: number, unit: string, base: number): BenchFigure =>
      benchFigure('keyless', metric, value, unit, base);
    return [
      figure(
        `OpenTicket calls/s at ${CONCURRENCY} in flight (baseline: health Check)`,
        keyless.callsPerSecond,
        'calls/s',
        baseline.callsPerSecond,
      ),
      figure(
        'OpenTicket latency p50',
        percentile(keyless.latencies, 50),
        'ms',
        percentile(baseline.latencies, 50),
      ),
      figure(
        'OpenTicket latency p99',
        percentile(keyless.latencies, 99),
        'ms',
        percentile(baseline.latencies, 99),
      ),
    ];
  } finally {
    client.close();
    health.close();
    await server.stop(500);
  }
}
