import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import type { Registry } from 'prom-client';
import { protoFiles, protoRoot } from '@keyfleet/proto';
import { ErrorCode, KeyfleetError } from './keyfleet-error.js';
import { statusName, toServiceError } from './grpc-status.js';
import { adminAccess, subjectAltNames, type Access, type Grant } from './client-roles.js';
import type { ServerSecurity } from './server-security.js';
import type { Logger } from './logger.js';
import { createGrpcServerMetrics } from './service-metrics.js';

/** The part of a server call every call kind shares. */
type SurfaceCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/** What a handler knows about its caller. */
export interface CallContext {
  /** The method's name as in the .proto, e.g. "Rotate". */
  readonly method: string;
  /**
   * Who the caller is: `uri:<first subjectAltName URI>` when the certificate
   * has one, else `cn:<common name>`; `insecure-dev` in plain-text mode.
   */
  readonly identity: string;
  /** What the caller may do, per ring. */
  readonly access: Access;
  readonly peer: string;
  /** Aborted when the client cancels or the server shuts down. */
  readonly signal: AbortSignal;
}

export type UnaryHandler<Req = never, Res = unknown> = (request: Req, context: CallContext) => Promise<Res>;
/** Resolves when the stream should end; rejects to end it with an error. */
export type ServerStreamHandler<Req = never, Res = unknown> = (
  request: Req,
  stream: grpc.ServerWritableStream<Req, Res>,
  context: CallContext,
) => Promise<void>;

/**
 * A bidirectional stream (xDS's SDS): requests arrive on the stream, so its
 * access must be `admin` or `known` and the handler checks each request's
 * rings with `context.access`. Resolves when the stream should end.
 */
export type BidiStreamHandler<Req = never, Res = unknown> = (
  stream: grpc.ServerDuplexStream<Req, Res>,
  context: CallContext,
) => Promise<void>;

/**
 * Who may call a method, checked before its handler runs:
 * - `admin`: admin only;
 * - `known`: any caller with a grant (the handler filters per ring with `context.access`);
 * - `ring`: the grant on the ring the request names (`ringOf` validates the
 *   field and throws INVALID_ARGUMENT; `grant` may depend on the request).
 */
export type MethodAccess =
  | { readonly kind: 'admin' }
  | { readonly kind: 'known' }
  | {
      readonly kind: 'ring';
      readonly ringOf: (request: never) => string;
      readonly grant: Grant | ((request: never) => Grant);
    };

export const methodAccess = {
  admin: { kind: 'admin' } as MethodAccess,
  known: { kind: 'known' } as MethodAccess,
  ring: <Req>(ringOf: (request: Req) => string, grant: Grant | ((request: Req) => Grant)): MethodAccess => ({
    kind: 'ring',
    ringOf,
    grant: grant as Grant | ((request: never) => Grant),
  }),
};

/**
 * One service to serve: its ts-proto definition, handlers by method key, and
 * every method's access by its .proto name (a method without one stops start-up).
 */
export interface ServiceBinding {
  readonly definition: grpc.ServiceDefinition;
  readonly handlers: Readonly<
    Record<
      string,
      UnaryHandler<never, unknown> | ServerStreamHandler<never, unknown> | BidiStreamHandler<never, unknown>
    >
  >;
  readonly access: Readonly<Record<string, MethodAccess>>;
}

export interface ServiceServerOptions {
  /** host:port; port 0 picks one. */
  readonly address: string;
  readonly security: ServerSecurity;
  readonly services: readonly ServiceBinding[];
  readonly registry: Registry;
  readonly logger: Logger;
  /** Stream and connection limits; every field has a default (`defaultStreamLimits`). */
  readonly limits?: Partial<StreamLimits>;
}

/**
 * What one caller may hold open, so a client that opens streams and never
 * reads them cannot grow a replica's memory without bound.
 */
export interface StreamLimits {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  readonly maxConcurrentStreamsPerConnection: number;
  /**
   * Open server streams per caller identity across all connections; past it
   * a new stream fails RESOURCE_EXHAUSTED. Callers that share a certificate
   * share the quota: give each node its own identity (SAN URI), or raise it.
   */
  readonly maxStreamsPerIdentity: number;
  /** Server pings an idle connection this often; a peer that does not answer is dropped with its streams. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

export const defaultStreamLimits: StreamLimits = {
  maxConcurrentStreamsPerConnection: 100,
  maxStreamsPerIdentity: 256,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
};

export interface RunningServiceServer {
  readonly server: grpc.Server;
  readonly port: number;
  /**
   * Readiness: health for the whole server ("") and every served service.
   * Liveness is the separate health service name `liveness`, SERVING for as
   * long as the process answers (until stop).
   */
  setServing(serving: boolean): void;
  /** Stops accepting calls, ends streams, waits up to `graceMs` for unary calls. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The grpc.health.v1 service name that answers liveness ("the process
 * works"): a Kubernetes grpc livenessProbe names it in `service`. The empty
 * name and the served services' names answer readiness.
 */
export const livenessServiceName = 'liveness';

function methodNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function authenticate(call: SurfaceCall, security: ServerSecurity): { identity: string; access: Access } {
  if (security.mode === 'insecure-dev') return { identity: 'insecure-dev', access: adminAccess };
  // grpc-js hands out only certificates that chained to the client CA.
  const certificate = call.getAuthContext().sslPeerCertificate;
  if (!certificate || !certificate.fingerprint256) {
    throw new KeyfleetError(ErrorCode.Unauthenticated, 'a client certificate is required');
  }
  const cn = certificate.subject?.CN;
  const commonName = typeof cn === 'string' ? cn : '';
  const fingerprintSha256 = certificate.fingerprint256.replaceAll(':', '').toLowerCase();
  const { uris, dnsNames } = subjectAltNames(certificate.subjectaltname);
  const access = security.roles.accessOf({ commonName, fingerprintSha256, uris, dnsNames });
  const identity = uris[0] !== undefined ? `uri:${uris[0]}` : `cn:${commonName}`;
  if (!access.known) {
    throw new KeyfleetError(ErrorCode.PermissionDenied, `client ${JSON.stringify(identity)} has no grant`);
  }
  return { identity, access };
}

function checkAccess(name: string, rule: MethodAccess, request: unknown, identity: string, access: Access) {
  if (rule.kind === 'known' || access.admin) return;
  if (rule.kind === 'admin')
    throw new KeyfleetError(ErrorCode.PermissionDenied, `${name} needs the admin role`);
  const ring = rule.ringOf(request as never);
  const grant = typeof rule.grant === 'function' ? rule.grant(request as never) : rule.grant;
  if (!access.allows(grant, ring)) {
    throw new KeyfleetError(
      ErrorCode.PermissionDenied,
      `${name}: ${JSON.stringify(identity)} has no ${grant} grant for ring "${ring}"`,
    );
  }
}

/** Starts a gRPC server with health, reflection, roles, metrics and error mapping around every handler. */
export async function startServiceServer(options: ServiceServerOptions): Promise<RunningServiceServer> {
  const { security, registry, logger } = options;
  const { requests, durations, streamsRejected } = createGrpcServerMetrics(registry);
  const limits: StreamLimits = { ...defaultStreamLimits, ...options.limits };
  const shutdown = new AbortController();
  const server = new grpc.Server({
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreamsPerConnection,
    // Half-open peers (a node that vanished without a FIN) stop counting as watchers.
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
  });
  /** identity → open server streams */
  const openStreams = new Map<string, number>();

  for (const binding of options.services) {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(binding.definition)) {
      const handler = binding.handlers[key];
      if (!handler) throw new Error(`no handler for ${method.path}`);
      const serviceName = method.path.split('/')[1] ?? '';
      const name = methodNameOf(method.path);
      const rule = binding.access[name];
      if (!rule) throw new Error(`no access rule for ${method.path}`);
      const contextFor = (call: SurfaceCall): CallContext => {
        const { identity, access } = authenticate(call, security);
        checkAccess(name, rule, 'request' in call ? call.request : undefined, identity, access);
        // Made when a handler first asks (streams do, at once): a unary call
        // never does, and an AbortSignal per call, aborted with a fresh
        // DOMException when the call closed, was a tenth of a keyless call.
        let signal: AbortSignal | undefined;
        return {
          method: name,
          identity,
          access,
          peer: call.getPeer(),
          get signal() {
            return (signal ??= AbortSignal.any([shutdown.signal, cancelSignal(call)]));
          },
        };
      };
      // The method's metric children, bound once: a label lookup per call
      // hashes the label set again on the hot path of every request.
      const succeeded = requests.labels({ service: serviceName, method: name, code: 'OK' });
      const timing = durations.labels({ service: serviceName, method: name });
      const count = (error: unknown) => {
        if (!error) return succeeded.inc();
        requests.inc({ service: serviceName, method: name, code: statusName(toServiceError(error).code) });
      };

      if (!method.requestStream && !method.responseStream) {
        const unary = handler as UnaryHandler<unknown, unknown>;
        implementation[key] = ((
          call: grpc.ServerUnaryCall<unknown, unknown>,
          callback: grpc.sendUnaryData<unknown>,
        ) => {
          const stopTimer = timing.startTimer();
          Promise.resolve()
            .then(() => unary(call.request, contextFor(call)))
            .then(
              (response) => {
                count(undefined);
                callback(null, response);
              },
              (error: unknown) => {
                count(error);
                if (!(error instanceof KeyfleetError))
                  logger.error({ err: error, method: name }, 'handler failed');
                callback(toServiceError(error));
              },
            )
            .finally(() => stopTimer());
        }) as grpc.handleUnaryCall<unknown, unknown>;
      } else if (method.responseStream) {
        if (method.requestStream && rule.kind === 'ring') {
          throw new Error(
            `${method.path}: a bidirectional stream checks rings per request (access admin or known)`,
          );
        }
        const run = method.requestStream
          ? (call: grpc.ServerDuplexStream<unknown, unknown>, context: CallContext) =>
              (handler as BidiStreamHandler<unknown, unknown>)(call, context)
          : (call: grpc.ServerWritableStream<unknown, unknown>, context: CallContext) =>
              (handler as ServerStreamHandler<unknown, unknown>)(call.request, call, context);
        implementation[key] = ((
          call: grpc.ServerWritableStream<unknown, unknown> & grpc.ServerDuplexStream<unknown, unknown>,
        ) => {
          let held: string | undefined;
          const release = () => {
            if (held === undefined) return;
            const left = (openStreams.get(held) ?? 1) - 1;
            if (left > 0) openStreams.set(held, left);
            else openStreams.delete(held);
            held = undefined;
          };
          Promise.resolve()
            .then(() => {
              const context = contextFor(call);
              const open = openStreams.get(context.identity) ?? 0;
              if (open >= limits.maxStreamsPerIdentity) {
                streamsRejected.inc({ service: serviceName, method: name });
                throw new KeyfleetError(
                  ErrorCode.ResourceExhausted,
                  `${JSON.stringify(context.identity)} holds ${open} open streams, its quota; close some first`,
                );
              }
              held = context.identity;
              openStreams.set(held, open + 1);
              return run(call, context);
            })
            .finally(release)
            .then(
              () => {
                count(undefined);
                if (call.cancelled || call.writableEnded) return;
                // Ended by our shutdown, not by the client: say so, so the
                // client reconnects (to another replica) at once.
                if (shutdown.signal.aborted) {
                  call.emit('error', {
                    code: grpc.status.UNAVAILABLE,
                    details: 'the server is shutting down; reconnect',
                  });
                } else {
                  call.end();
                }
              },
              (error: unknown) => {
                count(error);
                if (!(error instanceof KeyfleetError))
                  logger.error({ err: error, method: name }, 'stream failed');
                if (!call.cancelled) call.emit('error', toServiceError(error));
              },
            );
        }) as grpc.handleServerStreamingCall<unknown, unknown> &
          grpc.handleBidiStreamingCall<unknown, unknown>;
      } else {
        throw new Error(`${method.path}: client streaming is not supported by service-kit`);
      }
    }
    server.addService(binding.definition, implementation);
  }

  const serviceNames = options.services.map((binding) => {
    const first = Object.values(binding.definition)[0];
    return first ? (first.path.split('/')[1] ?? '') : '';
  });
  const health = new HealthImplementation({
    ...Object.fromEntries(['', ...serviceNames].map((s) => [s, 'SERVING'])),
    [livenessServiceName]: 'SERVING',
  });
  health.addToServer(server);
  const definitions = protoLoader.loadSync([...protoFiles], { includeDirs: [protoRoot], keepCase: true });
  new ReflectionService(definitions).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, security.credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  if (security.mode === 'mtls') {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('TLS certificate files were not loaded within 10 s')),
        10_000,
      );
    });
    try {
      await Promise.race([security.ready(), timeout]);
    } catch (error) {
      server.forceShutdown();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
  if (security.mode === 'insecure-dev') {
    logger.warn(
      { port },
      'gRPC is plain text and every caller is admin (KEYFLEET_INSECURE_DEV): development only',
    );
  }

  return {
    server,
    port,
    setServing(serving) {
      const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
      for (const name of ['', ...serviceNames]) health.setStatus(name, status);
    },
    stop(graceMs = 5000) {
      shutdown.abort();
      health.setStatus(livenessServiceName, 'NOT_SERVING');
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function cancelSignal(surface: SurfaceCall): AbortSignal {
  // Every call kind is an EventEmitter with these two events.
  const call = surface as grpc.ServerWritableStream<unknown, unknown>;
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  call.once('cancelled', () => controller.abort());
  // A server stream also ends when the client half-closes or the socket drops.
  call.once('close', () => controller.abort());
  return controller.signal;
}
