// A TicketKeyService on loopback that speaks the contract's WatchKeySet and
// AckKeySet from a key set the test controls (heartbeats every 100 ms), so
// tests can stage reconnects, stale epochs and outages exactly. Test-only.
import * as grpc from '@grpc/grpc-js';
import {
  KeySet,
  TicketKeyServiceService,
  type AckKeySetRequest,
  type WatchKeySetRequest,
  type WatchKeySetResponse,
} from '@keyfleet/proto';
import { drainGrpcServer } from '@keyfleet/test-support';

const hour = 3_600_000;

/** A key set of `keyIds` (keys 1 s apart from time 0), 12 h window, 1 h rotation. */
export function keySet(epoch: number, keyIds: number[], ring = 'edge'): KeySet {
  return KeySet.fromPartial({
    ring,
    epoch,
    params: { ring, decryptWindowMs: 12 * hour, rotationIntervalMs: hour, propagationMs: 60_000 },
    keys: keyIds.map((id, index) => ({
      name: Buffer.alloc(16, id),
      secret: Buffer.alloc(32, id + 100),
      publishedAtMs: index * 1000,
      activatesAtMs: index * 1000,
    })),
    serverTimeMs: Date.now(),
  });
}

/** A TicketKeyService that streams whatever `state.current` is and records acks and watchers. */
export class FakeKeyService {
  current: KeySet = keySet(1, [1]);
  readonly acks: AckKeySetRequest[] = [];
  readonly streams = new Set<grpc.ServerWritableStream<WatchKeySetRequest, WatchKeySetResponse>>();
  readonly requests: WatchKeySetRequest[] = [];
  server: grpc.Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    const server = new grpc.Server();
    const unimplemented = (_: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback({ code: grpc.status.UNIMPLEMENTED });
    server.addService(TicketKeyServiceService, {
      getKeySet: unimplemented,
      rotate: unimplemented,
      revokeKey: unimplemented,
      putRing: unimplemented,
      listRings: unimplemented,
      watchKeySet: (call: grpc.ServerWritableStream<WatchKeySetRequest, WatchKeySetResponse>) => {
        this.requests.push(call.request);
        this.streams.add(call);
        call.write({ keySet: this.current });
        const heartbeat = setInterval(
          () => call.write({ heartbeat: { serverTimeMs: Date.now(), epoch: this.current.epoch } }),
          100,
        );
        const done = () => {
          clearInterval(heartbeat);
          this.streams.delete(call);
        };
        call.on('cancelled', done);
        call.on('close', done);
      },
      ackKeySet: (
        call: grpc.ServerUnaryCall<AckKeySetRequest, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        this.acks.push(call.request);
        callback(null, { epoch: this.current.epoch, ackCoverage: 1 });
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    this.server = server;
  }

  push(next: KeySet): void {
    this.current = next;
    for (const stream of this.streams) stream.write({ keySet: next });
  }

  async stop(): Promise<void> {
    for (const stream of this.streams) stream.end();
    if (this.server) await drainGrpcServer(this.server, 500);
    this.server = undefined;
  }
}

/**
 * A ring at the service's smallest rotation interval (1 s) and a short decrypt
 * window (default 1 s, the smallest), keys `keyIds` activated half a second
 * apart ending just before now: a node cut off from it stops issuing after
 * rotation interval + decrypt window.
 */
export function tinyKeySet(epoch: number, keyIds: number[], decryptWindowMs = 1000): KeySet {
  const set = keySet(epoch, keyIds);
  set.params = { ...set.params!, rotationIntervalMs: 1000, decryptWindowMs };
  const lastActivation = Date.now() - 500;
  set.keys = set.keys.map((key, index) => ({
    ...key,
    publishedAtMs: 0,
    activatesAtMs: lastActivation - (keyIds.length - 1 - index) * 500,
  }));
  return set;
}
