// Keyless OpenTicket over gRPC on loopback: p50/p99 latency and calls per
// second with 64 calls in flight, against grpc.health.v1 Check on the same
// server and channel at the same concurrency (the cost of a gRPC round trip
// with no work), measured in the same run.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { Registry } from 'prom-client';
import { KeySet, TicketServiceClient, TicketDecision } from '@keyfleet/proto';
import { createLogger, insecureDevSecurity, startServiceServer } from '@keyfleet/service-kit';
import { figure as benchFigure, percentile, type BenchFigure } from './bench-figure.js';
import { createTicketServiceBinding } from '../services/ticket-keys/src/keyless/ticket-service-binding.js';

const CONCURRENCY = 64;
const durationMs = Number(process.env.BENCH_KEYLESS_MS ?? 5000);

/** Runs `call` with CONCURRENCY in flight for durationMs; latencies in ms. */
async function load(call: () => Promise<void>): Promise<{ latencies: number[]; callsPerSecond: number }> {
  const latencies: number[] = [];
  const warmUpEnd = Date.now() + 500;
  const endAt = warmUpEnd + durationMs;
  let measuredStart = 0;
  const worker = async () => {
    while (Date.now() < endAt) {
      const start = performance.now();
      await call();
      if (Date.now() >= warmUpEnd) latencies.push(performance.now() - start);
    }
  };
  setTimeout(() => (measuredStart = performance.now()), 500);
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - measuredStart) / 1000;
  return { latencies, callsPerSecond: latencies.length / seconds };
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
    const baseline = await load(check);
    const keyless = await load(open);
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
