// Test helpers for the ticket-key service: in-process replicas on port 0, a
// typed promise client, and watchers that record every message they get.
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { service as healthService } from 'grpc-health-check';
import {
  type RingParams,
  TicketKeyServiceClient,
  type AckKeySetRequest,
  type AckKeySetResponse,
  type GetKeySetRequest,
  type GetKeySetResponse,
  type KeySet,
  type ListRingsRequest,
  type ListRingsResponse,
  type PutRingRequest,
  type PutRingResponse,
  type RevokeKeyRequest,
  type RevokeKeyResponse,
  type RotateRequest,
  type RotateResponse,
  type WatchKeySetResponse,
} from '@keyfleet/proto';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTicketKeysServer,
  type RunningTicketKeysServer,
  type TicketKeysServerOptions,
} from '../src/index.js';
import { parseKekFile, newKekLine, type KekRing } from '../src/store/kek.js';

export const testKeks: KekRing = parseKekFile(newKekLine('test-kek'));

export async function startReplica(
  redisUrl: string,
  keyPrefix: string,
  options: Partial<TicketKeysServerOptions> = {},
): Promise<RunningTicketKeysServer> {
  return createTicketKeysServer({
    redisUrl,
    keyPrefix,
    keks: testKeks,
    security: insecureDevSecurity(),
    registry: new Registry(),
    logger: createLogger('ticket-keys-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    runScheduler: false,
    watcherRefreshMs: 200,
    ...options,
  });
}

/** A ring's parameters for PutRing: zero (the default) wherever `overrides` says nothing. */
export function ringParams(ring: string, overrides: Partial<RingParams> = {}): RingParams {
  return {
    ring,
    rotationIntervalMs: 0,
    propagationMs: 0,
    decryptWindowMs: 0,
    ticketLifetimeMs: 0,
    maxSessionAgeMs: 0,
    bindServerName: false,
    promoteOnFullAck: false,
    ...overrides,
  };
}

/** The generated client with promise-returning unary calls. */
export function connect(
  port: number,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
) {
  const client = new TicketKeyServiceClient(`localhost:${port}`, credentials, options);
  const unary =
    <Req, Res>(name: string) =>
    (request: Req): Promise<Res> =>
      new Promise((resolve, reject) => {
        const method = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[name]!;
        method.call(client, request, (error, response) => (error ? reject(error) : resolve(response)));
      });
  return {
    raw: client,
    getKeySet: unary<GetKeySetRequest, GetKeySetResponse>('getKeySet'),
    ackKeySet: unary<AckKeySetRequest, AckKeySetResponse>('ackKeySet'),
    rotate: unary<RotateRequest, RotateResponse>('rotate'),
    revokeKey: unary<RevokeKeyRequest, RevokeKeyResponse>('revokeKey'),
    putRing: unary<PutRingRequest, PutRingResponse>('putRing'),
    listRings: unary<ListRingsRequest, ListRingsResponse>('listRings'),
    close: () => client.close(),
  };
}
type UnaryMethod<Req, Res> = (
  request: Req,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => unknown;
export type TestClient = ReturnType<typeof connect>;

/** A WatchKeySet stream that keeps every key set and heartbeat it received. */
export interface RecordingWatcher {
  readonly keySets: KeySet[];
  readonly heartbeats: number[];
  error: grpc.ServiceError | undefined;
  ended: boolean;
  cancel(): void;
}

export function watch(
  client: TestClient,
  ring: string,
  nodeId: string,
  heartbeatIntervalMs = 0,
  onKeySet?: (keySet: KeySet) => void,
): RecordingWatcher {
  const call = client.raw.watchKeySet({ ring, nodeId, heartbeatIntervalMs });
  const recording: RecordingWatcher = {
    keySets: [],
    heartbeats: [],
    error: undefined,
    ended: false,
    cancel: () => call.cancel(),
  };
  call.on('data', (message: WatchKeySetResponse) => {
    if (message.keySet) {
      recording.keySets.push(message.keySet);
      onKeySet?.(message.keySet);
    }
    if (message.heartbeat) recording.heartbeats.push(message.heartbeat.epoch);
  });
  call.on('error', (error: grpc.ServiceError) => {
    if (error.code !== grpc.status.CANCELLED) recording.error = error;
  });
  call.on('end', () => (recording.ended = true));
  return recording;
}

/** Polls until `check` holds (generous deadline for a loaded CI machine). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const lastEpoch = (watcher: RecordingWatcher): number => watcher.keySets.at(-1)?.epoch ?? 0;

/** The gRPC status a rejected call failed with. */
export async function statusOf(call: Promise<unknown>): Promise<{ code: grpc.status; details: string }> {
  try {
    await call;
  } catch (error) {
    const serviceError = error as grpc.ServiceError;
    return { code: serviceError.code, details: serviceError.details };
  }
  throw new Error('expected the call to fail');
}

/** grpc.health.v1 Check for the whole server (""): 'SERVING' or 'NOT_SERVING'. */
export async function healthOf(port: number): Promise<string> {
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const client = new Health(`localhost:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      (client as unknown as { check: HealthCheck }).check({ service: '' }, (error, response) =>
        error ? reject(error) : resolve(String(response.status)),
      ),
    );
  } finally {
    client.close();
  }
}
type HealthCheck = (
  request: { service: string },
  callback: (error: grpc.ServiceError | null, response: { status: string | number }) => void,
) => void;
