/**
 * Rotation fan-out: time from a Rotate RPC being sent to the new key set
 * arriving on every one of N watchers (N = 1, 10, 100; p50 and p99 over the
 * rounds, in ms), against a raw Redis PUBLISH→SUBSCRIBE round trip measured in
 * the same run. The service runs in-process on its own redis-server.
 *
 * Method change: Rotate goes over a connection of its own, the watchers share
 * another. The server admits at most 100 concurrent streams per connection,
 * so with 100 watchers on the connection Rotate used, its call never started
 * and the bench hung at N = 100. The watchers' side is unchanged.
 */
import { Redis } from 'ioredis';
import * as grpc from '@grpc/grpc-js';
import { TicketKeyServiceClient, type WatchKeySetResponse } from '@keyfleet/proto';
import { putBenchRing, startBenchTicketKeys, unary } from './bench-ticket-keys.js';
import { figure, percentile, startTimer, type BenchFigure } from './bench-figure.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 40);
const watcherCounts = [1, 10, 100];

async function publishSubscribeRoundTripsMs(url: string, count: number): Promise<number[]> {
  const publisher = new Redis(url);
  const subscriber = new Redis(url);
  await subscriber.subscribe('bench-baseline');
  const samples: number[] = [];
  for (let i = 0; i < count + 5; i++) {
    const elapsed = startTimer();
    const received = new Promise<void>((resolve) => subscriber.once('message', () => resolve()));
    await publisher.publish('bench-baseline', `ring ${i}`);
    await received;
    if (i >= 5) samples.push(elapsed()); // the first few warm up connections and JIT
  }
  publisher.disconnect();
  subscriber.disconnect();
  return samples;
}

export default async function run(): Promise<BenchFigure[]> {
  const { redis, service, stop } = await startBenchTicketKeys();
  const client = new TicketKeyServiceClient(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure());
  // A local subchannel pool keeps grpc-js from sharing the watchers' connection.
  const rotator = new TicketKeyServiceClient(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
  const figures: BenchFigure[] = [];
  try {
    const baseline = await publishSubscribeRoundTripsMs(redis.url, rounds);
    const baselineP50 = percentile(baseline, 50);
    const baselineP99 = percentile(baseline, 99);
    figures.push(figure('rotation', 'redis_publish_subscribe_p50', baselineP50, 'ms', baselineP50));

    for (const watcherCount of watcherCounts) {
      const ring = `bench-${watcherCount}`;
      await putBenchRing(client, ring, 60_000);
      // Epoch waiters: resolve when every watcher has received `epoch`.
      const seen = new Map<number, number>();
      const waiters = new Map<number, () => void>();
      const streams = Array.from({ length: watcherCount }, (_, i) => {
        const stream = client.watchKeySet({ ring, nodeId: `bench-${i}`, heartbeatIntervalMs: 60_000 });
        stream.on('data', (message: WatchKeySetResponse) => {
          if (!message.keySet) return;
          const epoch = message.keySet.epoch;
          const count = (seen.get(epoch) ?? 0) + 1;
          seen.set(epoch, count);
          if (count === watcherCount) waiters.get(epoch)?.();
        });
        stream.on('error', () => undefined);
        return stream;
      });
      const allAt = (epoch: number) =>
        new Promise<void>((resolve) => {
          if ((seen.get(epoch) ?? 0) >= watcherCount) return resolve();
          waiters.set(epoch, resolve);
        });
      await allAt(1);
      const samples: number[] = [];
      for (let round = 0; round < rounds + 3; round++) {
        const elapsed = startTimer();
        const response = await unary<{ keySet?: { epoch: number } }>((cb) =>
          rotator.rotate({ ring, reason: 'bench' }, cb),
        );
        await allAt(response.keySet!.epoch);
        if (round >= 3) samples.push(elapsed());
      }
      for (const stream of streams) stream.cancel();
      figures.push(
        figure('rotation', `fanout_${watcherCount}_watchers_p50`, percentile(samples, 50), 'ms', baselineP50),
        figure('rotation', `fanout_${watcherCount}_watchers_p99`, percentile(samples, 99), 'ms', baselineP99),
      );
    }
  } finally {
    client.close();
    rotator.close();
    await stop();
  }
  return figures;
}
