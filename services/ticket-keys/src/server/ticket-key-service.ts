import type * as grpc from '@grpc/grpc-js';
import {
  TicketKeyServiceService,
  WatchKeySetResponse,
  type AckKeySetRequest,
  type AckKeySetResponse,
  type GetKeySetRequest,
  type GetKeySetResponse,
  type ListRingsResponse,
  type PutRingRequest,
  type PutRingResponse,
  type RevokeKeyRequest,
  type RevokeKeyResponse,
  type RotateRequest,
  type RotateResponse,
  type RingStatus,
  type WatchKeySetRequest,
} from '@keyfleet/proto';
import {
  ErrorCode,
  KeyfleetError,
  invalidArgument,
  methodAccess,
  type CallContext,
  type Logger,
  type ServiceBinding,
} from '@keyfleet/service-kit';
import { keyNameLabel } from '@keyfleet/tls-engine';
import { scheduleOfRing, toProtoKeySet, type RingState } from '../schedule/key-set-view.js';
import { compileRingParams, ringParamsToProto } from '../schedule/ring-params.js';
import type { KeyStore } from '../store/key-store.js';
import type { KeySetHub } from '../stream/key-set-hub.js';
import type { WatcherRegistry } from '../stream/watcher-registry.js';
import type { TicketKeysMetrics } from '../metrics/ticket-keys-metrics.js';
import {
  epochField,
  heartbeatField,
  keyNameField,
  nodeIdField,
  reasonField,
  ringField,
} from './request-fields.js';

export interface TicketKeyServiceDeps {
  readonly store: KeyStore;
  readonly hub: KeySetHub;
  readonly watchers: WatcherRegistry;
  readonly metrics: TicketKeysMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  /** Called after PutRing so the ring's rotation schedule follows its interval. */
  readonly onRingChanged?: (ring: string, rotationIntervalMs: number) => void;
}

/** Messages buffered for one watcher that does not read before its stream is ended. */
export const maxBufferedKeySetMessages = 1000;

/**
 * Who may call what: writes need admin; the ring's secrets (GetKeySet without
 * omit_secrets, WatchKeySet, AckKeySet) need its node grant; names, states and
 * times need its reader grant. ListRings lists only rings the caller may read.
 */
export const ticketKeyAccess = {
  GetKeySet: methodAccess.ring(
    (request: GetKeySetRequest) => ringField(request.ring),
    (request: GetKeySetRequest) => (request.omitSecrets ? 'reader' : 'node'),
  ),
  WatchKeySet: methodAccess.ring((request: WatchKeySetRequest) => ringField(request.ring), 'node'),
  AckKeySet: methodAccess.ring((request: AckKeySetRequest) => ringField(request.ring), 'node'),
  Rotate: methodAccess.admin,
  RevokeKey: methodAccess.admin,
  PutRing: methodAccess.admin,
  ListRings: methodAccess.known,
};

/**
 * The TicketKeyService handlers as a service-kit binding. Every request field
 * is checked before anything is read or written; writes go through the
 * store's scripts and their result is handed to the hub at once, so this
 * replica's watchers need not wait for the pub/sub echo.
 */
const encodeWatchResponse = (message: WatchKeySetResponse): Buffer =>
  Buffer.from(WatchKeySetResponse.encode(message).finish());

export function ticketKeyServiceBinding(deps: TicketKeyServiceDeps): ServiceBinding {
  const { store, hub, watchers, metrics, logger, clock } = deps;
  // A change is built into its wire form once and shared by every watcher of
  // the replica (the state object is the identity of a change).
  // It is encoded once too: the serializer below finds the bytes by the
  // message object, where it would otherwise encode it again for each watcher.
  const broadcastForms = new WeakMap<RingState, WatchKeySetResponse>();
  const encodedBroadcasts = new WeakMap<WatchKeySetResponse, Buffer>();
  const broadcastMessage = (state: RingState): WatchKeySetResponse => {
    let message = broadcastForms.get(state);
    if (!message) {
      message = { keySet: toProtoKeySet(state, clock()) };
      broadcastForms.set(state, message);
      encodedBroadcasts.set(message, encodeWatchResponse(message));
    }
    return message;
  };
  const watchKeySetDefinition = {
    ...TicketKeyServiceService.watchKeySet,
    responseSerialize: (message: WatchKeySetResponse): Buffer =>
      encodedBroadcasts.get(message) ?? encodeWatchResponse(message),
  };

  /** Fresh from Redis; while Redis is unreachable, this replica's last snapshot. */
  const readForClient = async (ring: string): Promise<RingState> => {
    try {
      return await store.requireRing(ring);
    } catch (error) {
      const cached = hub.current(ring);
      if (error instanceof KeyfleetError && error.code === ErrorCode.Unavailable && cached) return cached;
      throw error;
    }
  };

  const countRotation = (ring: string, error: unknown) => {
    // Unknown rings get no label series: a caller must not be able to grow them.
    if (error instanceof KeyfleetError && error.code === ErrorCode.NotFound) return;
    const conflict =
      error instanceof KeyfleetError &&
      (error.code === ErrorCode.FailedPrecondition || error.code === ErrorCode.Aborted);
    metrics.rotations.inc({ ring, result: conflict ? 'conflict' : 'error' });
  };

  const getKeySet = async (request: GetKeySetRequest): Promise<GetKeySetResponse> => {
    const ring = ringField(request.ring);
    const state = await readForClient(ring);
    return { keySet: toProtoKeySet(state, clock(), { omitSecrets: request.omitSecrets }) };
  };

  const watchKeySet = async (
    request: WatchKeySetRequest,
    stream: grpc.ServerWritableStream<WatchKeySetRequest, WatchKeySetResponse>,
    context: CallContext,
  ): Promise<void> => {
    const ring = ringField(request.ring);
    const nodeId = nodeIdField(request.nodeId);
    const heartbeatMs = heartbeatField(request.heartbeatIntervalMs);
    let lastSentEpoch = 0;
    // A watcher that stops reading must not grow this replica's memory without
    // bound: past the limit its stream ends and it reconnects for a fresh set.
    let overflowed: (() => void) | undefined;
    const write = (message: WatchKeySetResponse) => {
      if (stream.cancelled || stream.writableEnded || context.signal.aborted) return;
      if (stream.writableLength >= maxBufferedKeySetMessages) {
        overflowed?.();
        return;
      }
      stream.write(message);
    };
    const send = (state: RingState) => {
      // Listener and initial load may race; epochs only move forward.
      if (state.epoch <= lastSentEpoch) return;
      lastSentEpoch = state.epoch;
      write(broadcastMessage(state));
    };
    const unlisten = hub.listen(ring, send);
    let unregister: (() => void) | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      // A cached ring is sent at once (the hub re-reads it in the background and
      // the listener sends anything newer): a slow Redis does not hold up a watcher.
      const cached = hub.current(ring);
      if (cached) hub.refreshSoon(ring);
      const state = cached ?? (await hub.load(ring));
      if (!state) throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" does not exist`);
      unregister = watchers.add(ring, { identity: context.identity, nodeId });
      if (state.epoch > lastSentEpoch) {
        // The first message is stamped now, not when the state was cached.
        lastSentEpoch = state.epoch;
        write({ keySet: toProtoKeySet(state, clock()) });
      }
      heartbeat = setInterval(
        () => write({ heartbeat: { serverTimeMs: clock(), epoch: lastSentEpoch } }),
        heartbeatMs,
      );
      await new Promise<void>((resolve, reject) => {
        if (context.signal.aborted) return resolve();
        context.signal.addEventListener('abort', () => resolve(), { once: true });
        overflowed = () =>
          reject(
            new KeyfleetError(
              ErrorCode.ResourceExhausted,
              `over ${maxBufferedKeySetMessages} messages are waiting for this watcher; reconnect`,
            ),
          );
      });
    } finally {
      clearInterval(heartbeat);
      unlisten();
      unregister?.();
    }
  };

  const ackKeySet = async (request: AckKeySetRequest, context: CallContext): Promise<AckKeySetResponse> => {
    const ring = ringField(request.ring);
    const nodeId = nodeIdField(request.nodeId);
    const epoch = epochField('epoch', request.epoch);
    let state = hub.current(ring) ?? (await hub.load(ring));
    if (!state) throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" does not exist`);
    // This replica may lag the one that served the node's stream: look again before refusing.
    if (epoch > state.epoch) state = (await hub.load(ring)) ?? state;
    if (epoch > state.epoch) {
      throw invalidArgument('epoch', `${epoch} is ahead of the ring's epoch ${state.epoch}`);
    }
    // Counted only for streams the same caller holds under this node id.
    await watchers.ack(ring, { identity: context.identity, nodeId }, epoch);
    const coverage = await watchers.coverage(ring, state.epoch);
    if (state.params.promoteOnFullAck && coverage.live > 0 && coverage.ratio === 1) {
      try {
        const promoted = await store.promote(ring, state.epoch);
        if (promoted) {
          hub.accept(promoted);
          logger.info(
            { ring, epoch: promoted.epoch, watchers: coverage.live },
            'promoted pending key on full ack',
          );
        }
      } catch (error) {
        logger.warn({ ring, err: { message: (error as Error).message } }, 'early promotion failed');
      }
    }
    return { epoch: state.epoch, ackCoverage: coverage.ratio };
  };

  const rotate = async (request: RotateRequest, context: CallContext): Promise<RotateResponse> => {
    const ring = ringField(request.ring);
    const reason = reasonField(request.reason);
    const expectedEpoch =
      request.expectedEpoch === undefined ? undefined : epochField('expected_epoch', request.expectedEpoch);
    let outcome;
    try {
      outcome = await store.rotate(ring, { expectedEpoch });
    } catch (error) {
      countRotation(ring, error);
      throw error;
    }
    if (outcome.result !== 'ok') throw new KeyfleetError(ErrorCode.Internal, 'rotation was skipped');
    metrics.rotations.inc({ ring, result: 'ok' });
    hub.accept(outcome.state);
    const publishedKeyName = Buffer.from(outcome.publishedNameHex, 'hex');
    logger.info(
      {
        ring,
        epoch: outcome.state.epoch,
        keyName: keyNameLabel(publishedKeyName),
        by: context.identity,
        reason,
      },
      'rotated',
    );
    return { keySet: toProtoKeySet(outcome.state, clock(), { omitSecrets: true }), publishedKeyName };
  };

  const revokeKey = async (request: RevokeKeyRequest, context: CallContext): Promise<RevokeKeyResponse> => {
    const ring = ringField(request.ring);
    const nameHex = keyNameField(request.keyName);
    const reason = reasonField(request.reason);
    const state = await store.revoke(ring, nameHex);
    metrics.revocations.inc({ ring });
    hub.accept(state);
    logger.warn(
      { ring, epoch: state.epoch, keyName: nameHex.slice(0, 16), by: context.identity, reason },
      'revoked key',
    );
    return { keySet: toProtoKeySet(state, clock(), { omitSecrets: true }) };
  };

  const putRing = async (request: PutRingRequest, context: CallContext): Promise<PutRingResponse> => {
    if (!request.params) throw invalidArgument('params', 'required');
    const params = compileRingParams(request.params);
    const result = await store.putRing(params);
    const state = await store.readRing(params.ring);
    if (state) hub.accept(state);
    deps.onRingChanged?.(params.ring, result.params.rotationIntervalMs);
    logger.info(
      { ring: params.ring, epoch: result.epoch, created: result.created, by: context.identity },
      'put ring',
    );
    return { params: ringParamsToProto(result.params), created: result.created, epoch: result.epoch };
  };

  const listRings = async (_request: unknown, context: CallContext): Promise<ListRingsResponse> => {
    let states: RingState[];
    try {
      const names = await store.listRingNames();
      states = (await Promise.all(names.map((name) => store.readRing(name)))).filter(
        (state): state is RingState => state !== undefined,
      );
    } catch (error) {
      if (!(error instanceof KeyfleetError && error.code === ErrorCode.Unavailable)) throw error;
      states = hub.rings();
    }
    states = states.filter((state) => context.access.allows('reader', state.params.ring));
    const nowMs = clock();
    const rings: RingStatus[] = [];
    for (const state of states) {
      const ring = state.params.ring;
      const active = scheduleOfRing(state).activeAt(nowMs);
      const coverage = await watchers.coverage(ring, state.epoch).catch(() => watchers.lastCoverage(ring));
      rings.push({
        params: ringParamsToProto(state.params),
        epoch: state.epoch,
        activeKeyName: active ? Buffer.from(active.name) : Buffer.alloc(0),
        activeSinceMs: active?.activatesAtMs ?? 0,
        lastRotatedAtMs: state.lastRotatedAtMs,
        watchers: watchers.localWatchers(ring),
        ackCoverage: coverage?.ratio ?? 1,
      });
    }
    return { rings };
  };

  return {
    definition: { ...TicketKeyServiceService, watchKeySet: watchKeySetDefinition },
    handlers: {
      getKeySet,
      watchKeySet,
      ackKeySet,
      rotate,
      revokeKey,
      putRing,
      listRings,
    },
    access: ticketKeyAccess,
  };
}
