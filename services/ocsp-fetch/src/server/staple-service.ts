import type { ServerWritableStream } from '@grpc/grpc-js';
import {
  StapleServiceService,
  type GetStapleRequest,
  type GetStapleResponse,
  type ListCertificatesResponse,
  type RegisterCertificateRequest,
  type RegisterCertificateResponse,
  type UnregisterCertificateRequest,
  type UnregisterCertificateResponse,
  type WatchStaplesRequest,
  type WatchStaplesResponse,
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
import { parseCertificateChain } from '../pki/certificate-chain.js';
import { toCertificateRecord } from '../records/certificate-record.js';
import type { CertificateStore } from '../store/certificate-store.js';
import type { StoredCertificate } from '../store/stored-certificate.js';
import type { StapleChange, StapleHub } from '../stream/staple-hub.js';
import type { RefreshQueue } from '../refresh/refresh-queue.js';

export interface StapleServiceDeps {
  readonly store: Pick<CertificateStore, 'register' | 'unregister' | 'get' | 'list'>;
  readonly hub: Pick<StapleHub, 'certificates' | 'cached' | 'subscribe' | 'loaded'>;
  readonly queue: Pick<RefreshQueue, 'ensureScheduled' | 'unschedule'>;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly defaultHeartbeatIntervalMs: number;
}

const idPattern = /^[0-9a-f]{64}$/;

/** Messages buffered for one slow watcher before its stream is ended. */
const maxBufferedMessages = 10_000;

function certificateId(field: string, value: string): string {
  const id = value.trim().toLowerCase();
  if (!idPattern.test(id))
    throw invalidArgument(field, 'expected 64 hex characters (SHA-256 of the leaf DER)');
  return id;
}

function heartbeatIntervalOf(request: WatchStaplesRequest, fallbackMs: number): number {
  const ms = Number(request.heartbeatIntervalMs);
  if (ms === 0) return fallbackMs;
  if (!Number.isInteger(ms) || ms < 100 || ms > 60_000) {
    throw invalidArgument('heartbeat_interval_ms', 'must be 0 (the default) or between 100 and 60000');
  }
  return ms;
}

const notLoaded = () =>
  new KeyfleetError(ErrorCode.Unavailable, 'not ready: the registry has not been read from Redis yet');

/** Reads from Redis, or from this replica's cache while Redis is unreachable (once the cache is loaded). */
async function readThrough<T>(
  hub: Pick<StapleHub, 'loaded'>,
  fromStore: () => Promise<T>,
  fromCache: () => T,
): Promise<T> {
  try {
    return await fromStore();
  } catch (error) {
    if (error instanceof KeyfleetError && error.code === ErrorCode.Unavailable) {
      if (!hub.loaded) throw notLoaded();
      return fromCache();
    }
    throw error;
  }
}

/**
 * The StapleService handlers (staples.proto). Roles, status mapping, health
 * and metrics come from service-kit's server; RegisterCertificate and
 * UnregisterCertificate need admin.
 */
export function stapleServiceBinding(deps: StapleServiceDeps): ServiceBinding {
  const { store, hub, queue, clock, logger } = deps;
  const record = (certificate: StoredCertificate) => toCertificateRecord(certificate, clock());

  const registerCertificate = async (
    request: RegisterCertificateRequest,
    context: CallContext,
  ): Promise<RegisterCertificateResponse> => {
    const chain = await parseCertificateChain(request.chainPem ?? '');
    const { created, certificate } = await store.register(chain, clock());
    if (chain.ocspUrl) {
      try {
        await queue.ensureScheduled([chain.id]);
      } catch (error) {
        // Registered all the same: the periodic re-enqueue schedules it.
        logger.warn({ err: { message: (error as Error).message } }, 'could not schedule the first fetch yet');
      }
    }
    if (created) {
      logger.info(
        {
          certificate: chain.id.slice(0, 16),
          subject: chain.subject,
          ocspUrl: chain.ocspUrl,
          by: context.identity,
        },
        'certificate registered',
      );
    }
    return { certificate: record(certificate), created };
  };

  const unregisterCertificate = async (
    request: UnregisterCertificateRequest,
    context: CallContext,
  ): Promise<UnregisterCertificateResponse> => {
    const id = certificateId('id', request.id ?? '');
    if (!(await store.unregister(id)))
      throw new KeyfleetError(ErrorCode.NotFound, `certificate ${id} is not registered`);
    await queue.unschedule(id);
    logger.info({ certificate: id.slice(0, 16), by: context.identity }, 'certificate unregistered');
    return {};
  };

  const listCertificates = async (): Promise<ListCertificatesResponse> => {
    const certificates = await readThrough(
      hub,
      () => store.list(),
      () => hub.certificates().sort((a, b) => a.chain.id.localeCompare(b.chain.id)),
    );
    return { certificates: certificates.map(record) };
  };

  const getStaple = async (request: GetStapleRequest): Promise<GetStapleResponse> => {
    let id: string;
    if (request.id !== undefined && request.id !== '') {
      id = certificateId('id', request.id);
    } else if (request.fingerprintSha256 !== undefined && request.fingerprintSha256.length > 0) {
      if (request.fingerprintSha256.length !== 32)
        throw invalidArgument('fingerprint_sha256', 'must be 32 bytes');
      id = Buffer.from(request.fingerprintSha256).toString('hex');
    } else {
      throw invalidArgument('selector', 'set id or fingerprint_sha256');
    }
    const certificate = await readThrough(
      hub,
      () => store.get(id),
      () => hub.cached(id),
    );
    if (!certificate) throw new KeyfleetError(ErrorCode.NotFound, `certificate ${id} is not registered`);
    return { certificate: record(certificate) };
  };

  const watchStaples = async (
    request: WatchStaplesRequest,
    stream: ServerWritableStream<WatchStaplesRequest, WatchStaplesResponse>,
    context: CallContext,
  ): Promise<void> => {
    const nodeId = request.nodeId ?? '';
    // An empty snapshot before the first load would tell nodes every staple is gone.
    if (!hub.loaded) throw notLoaded();
    if (!/^[\x20-\x7e]{1,128}$/.test(nodeId))
      throw invalidArgument('node_id', 'must be 1 to 128 printable ASCII characters');
    const heartbeatMs = heartbeatIntervalOf(request, deps.defaultHeartbeatIntervalMs);
    const wanted = new Set((request.ids ?? []).map((id) => certificateId('ids', id)));
    const watches = (id: string) => wanted.size === 0 || wanted.has(id);

    // Subscribing and taking the snapshot in the same tick: no change can
    // fall between them.
    // A watcher that stops reading must not grow this replica's memory without
    // bound: past the limit its stream ends and it resyncs from a snapshot.
    let overflowed: (() => void) | undefined;
    const send = (message: WatchStaplesResponse) => {
      if (stream.writableEnded || stream.destroyed) return;
      if (stream.writableLength >= maxBufferedMessages) {
        overflowed?.();
        return;
      }
      stream.write(message);
    };
    const unsubscribe = hub.subscribe((change: StapleChange) => {
      if (change.type === 'removed') {
        if (watches(change.id)) send({ removedId: change.id });
      } else if (watches(change.certificate.chain.id)) {
        send({ updated: record(change.certificate) });
      }
    });
    const heartbeat = setInterval(
      () => send({ heartbeat: { serverTimeMs: clock(), epoch: 0 } }),
      heartbeatMs,
    );
    try {
      send({
        snapshot: {
          certificates: hub
            .certificates()
            .filter((c) => watches(c.chain.id))
            .map(record),
        },
      });
      logger.debug({ nodeId, ids: wanted.size, peer: context.peer }, 'staple watcher connected');
      await new Promise<void>((resolve, reject) => {
        if (context.signal.aborted) return resolve();
        context.signal.addEventListener('abort', () => resolve(), { once: true });
        overflowed = () =>
          reject(
            new KeyfleetError(
              ErrorCode.ResourceExhausted,
              `over ${maxBufferedMessages} messages are waiting for this watcher; reconnect`,
            ),
          );
      });
    } finally {
      clearInterval(heartbeat);
      unsubscribe();
    }
  };

  return {
    definition: StapleServiceService,
    handlers: {
      registerCertificate,
      unregisterCertificate,
      listCertificates,
      getStaple,
      watchStaples,
    },
    // Staples are public (any TLS client sees them); the certificate list is
    // not secret either. Any caller with a grant reads; writes need admin.
    access: {
      RegisterCertificate: methodAccess.admin,
      UnregisterCertificate: methodAccess.admin,
      ListCertificates: methodAccess.known,
      GetStaple: methodAccess.known,
      WatchStaples: methodAccess.known,
    },
  };
}
