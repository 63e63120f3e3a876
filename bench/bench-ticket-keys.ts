/**
 * The ticket-keys service as the fan-out benches run it: in-process, on a
 * redis-server of its own, no TLS, no log output, and (unless asked) no
 * scheduler, so only the bench's own Rotate calls change a ring.
 */
import type * as grpc from '@grpc/grpc-js';
import type { TicketKeyServiceClient } from '@keyfleet/proto';
import { Registry } from 'prom-client';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { createTicketKeysServer, newKekLine, parseKekFile } from '../services/ticket-keys/src/index.js';

export interface BenchTicketKeys {
  readonly redis: TestRedis;
  readonly service: Awaited<ReturnType<typeof createTicketKeysServer>>;
  stop(this: void): Promise<void>;
}

export async function startBenchTicketKeys(): Promise<BenchTicketKeys> {
  const redis = await startRedis();
  const service = await createTicketKeysServer({
    redisUrl: redis.url,
    keyPrefix: randomPrefix('bench'),
    keks: parseKekFile(newKekLine('bench')),
    security: insecureDevSecurity(),
    registry: new Registry(),
    logger: createLogger('bench', 'silent'),
    runScheduler: false,
  });
  return {
    redis,
    service,
    async stop() {
      await service.stop(500);
      await redis.stop();
    },
  };
}

/** A unary gRPC call as a promise. */
export function unary<Res>(
  method: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) =>
    method((error, response) => (error ? reject(error) : resolve(response))),
  );
}

/** PutRing for a bench ring: a 1 h rotation interval and decrypt window, no scheduler fires during a run. */
export function putBenchRing(
  client: TicketKeyServiceClient,
  ring: string,
  propagationMs: number,
): Promise<unknown> {
  return unary((cb) =>
    client.putRing(
      {
        params: {
          ring,
          rotationIntervalMs: 3_600_000,
          propagationMs,
          decryptWindowMs: 3_600_000,
          ticketLifetimeMs: 0,
          maxSessionAgeMs: 0,
          bindServerName: false,
          promoteOnFullAck: false,
        },
      },
      cb,
    ),
  );
}
