/**
 * Envoy's Secret Discovery Service on ticket-keys' gRPC port: resources named
 * `ticket-keys/<ring>` are the ring's keys as `session_ticket_keys`, pushed
 * when the ring changes and when a key activates or expires (the order
 * changes then, the epoch does not). The state-of-the-world protocol as
 * Envoy speaks it: the first request carries the node; a request that
 * carries the last response's nonce and no error ACKs its version (counted
 * toward the ring's ack coverage under the caller's mTLS identity and the
 * node id), one with `error_detail` NACKs it (logged, counted, the last good
 * version stays); a request with an older nonce is stale and ignored; a
 * response goes out only when the bytes changed. FetchSecrets answers the
 * same resources once.
 */
import type * as grpc from '@grpc/grpc-js';
import {
  ErrorCode,
  KeyfleetError,
  methodAccess,
  type CallContext,
  type Logger,
  type ServiceBinding,
} from '@keyfleet/service-kit';
import { checkRingName } from '../schedule/ring-params.js';
import { toProtoKeySet, type RingState } from '../schedule/key-set-view.js';
import type { KeySetHub } from '../stream/key-set-hub.js';
import type { WatcherRegistry } from '../stream/watcher-registry.js';
import {
  packSecret,
  secretDiscoveryServiceDefinition,
  secretTypeUrl,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from './envoy-api.js';
import {
  envoyTicketKeySecret,
  ringOfResource,
  type EnvoyTicketKeySecret,
} from './envoy-ticket-key-secret.js';
import type { SdsMetrics } from './sds-metrics.js';

export interface SecretDiscoveryDeps {
  readonly hub: KeySetHub;
  readonly watchers: WatcherRegistry;
  readonly metrics: SdsMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
}

/** Node ids are kept as watcher names; Envoy's are host names or pod names. */
const nodeIdPattern = /^[\x21-\x7e]{1,128}$/;

interface Subscription {
  readonly ring: string;
  /** What this stream last sent for the resource. */
  sent: EnvoyTicketKeySecret | undefined;
  unlisten: () => void;
  unregister: () => void;
  timer: NodeJS.Timeout | undefined;
}

export function secretDiscoveryServiceBinding(deps: SecretDiscoveryDeps): ServiceBinding {
  const { hub, watchers, metrics, logger, clock } = deps;

  /** The ring a requested resource names, checked against the caller's node grant, and its state. */
  const resolveResource = async (
    name: string,
    context: CallContext,
  ): Promise<{ ring: string; state: RingState }> => {
    const ring = ringOfResource(name);
    if (ring === undefined) {
      throw new KeyfleetError(
        ErrorCode.NotFound,
        `SDS resource "${name.slice(0, 80)}": keyfleet serves ticket-keys/<ring>`,
      );
    }
    checkRingName(ring, 'resource_names');
    if (!context.access.allows('node', ring)) {
      throw new KeyfleetError(
        ErrorCode.PermissionDenied,
        `${context.method}: ${JSON.stringify(context.identity)} has no node grant for ring "${ring}"`,
      );
    }
    const state = hub.current(ring) ?? (await hub.load(ring));
    if (!state) throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" does not exist`);
    return { ring, state };
  };

  /** One-shot: the named resources as they are now (no node, nonce or ACK). */
  const fetchSecrets = async (
    request: DiscoveryRequest,
    context: CallContext,
  ): Promise<DiscoveryResponse> => {
    if (request.resource_names.length === 0 || request.resource_names.length > 16) {
      throw new KeyfleetError(ErrorCode.InvalidArgument, 'resource_names: name 1 to 16 resources');
    }
    const built: EnvoyTicketKeySecret[] = [];
    for (const name of request.resource_names) {
      const { state } = await resolveResource(name, context);
      const secret = envoyTicketKeySecret(name, toProtoKeySet(state, clock()), clock());
      if (secret) built.push(secret);
    }
    return {
      version_info: built.map((secret) => secret.version).join(','),
      resources: built.map((secret) => packSecret(secret.secret)),
      type_url: secretTypeUrl,
      nonce: '',
    };
  };

  const streamSecrets = async (
    stream: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    context: CallContext,
  ): Promise<void> => {
    const subscriptions = new Map<string, Subscription>();
    let nodeId: string | undefined;
    let nonceCount = 0;
    /** The last response's nonce and the resources' versions it carried. */
    let lastNonce = '';
    let lastResponse: { version: string; entries: [string, EnvoyTicketKeySecret][] } | undefined;
    let failure: ((error: Error) => void) | undefined;

    const fail = (error: Error) => failure?.(error);

    /** Sends every subscribed resource that exists, if any of them changed since the last response. */
    const push = (reason: string) => {
      if (stream.cancelled || stream.writableEnded || context.signal.aborted) return;
      const entries: [string, EnvoyTicketKeySecret][] = [];
      let changed = false;
      for (const [name, subscription] of subscriptions) {
        const state = hub.current(subscription.ring);
        const built = state && envoyTicketKeySecret(name, toProtoKeySet(state, clock()), clock());
        schedule(name, subscription, built);
        if (!built) continue;
        entries.push([name, built]);
        if (built.version !== subscription.sent?.version) changed = true;
      }
      if (!changed || entries.length === 0) return;
      for (const [name, built] of entries) subscriptions.get(name)!.sent = built;
      lastNonce = String(++nonceCount);
      const version = entries.map(([, built]) => built.version).join(',');
      lastResponse = { version, entries };
      stream.write({
        version_info: version,
        resources: entries.map(([, built]) => packSecret(built.secret)),
        type_url: secretTypeUrl,
        nonce: lastNonce,
      });
      for (const [name, built] of entries) {
        metrics.pushes.inc({ ring: subscriptions.get(name)!.ring });
        logger.debug({ node: nodeId, resource: name, version: built.version, reason }, 'SDS push');
      }
    };

    /** Pushes again when the order next changes (activation, expiry) without a new epoch. */
    const schedule = (name: string, subscription: Subscription, built: EnvoyTicketKeySecret | undefined) => {
      clearTimeout(subscription.timer);
      subscription.timer = undefined;
      const at = built?.nextChangeAtMs;
      if (at === undefined) return;
      subscription.timer = setTimeout(() => push(`key transition of ${name}`), Math.max(0, at - clock()) + 5);
      subscription.timer.unref();
    };

    const subscribe = async (name: string, clientVersion: string) => {
      const { ring, state } = await resolveResource(name, context);
      const subscription: Subscription = {
        ring,
        sent: undefined,
        unlisten: hub.listen(ring, (_state: RingState) => push(`ring ${ring} changed`)),
        unregister: watchers.add(ring, { identity: context.identity, nodeId: nodeId! }),
        timer: undefined,
      };
      // After a reconnect the client names the version it holds: nothing to send if it is current.
      const current = envoyTicketKeySecret(name, toProtoKeySet(state, clock()), clock());
      if (current && clientVersion.split(',').includes(current.version)) subscription.sent = current;
      subscriptions.set(name, subscription);
    };

    const unsubscribe = (name: string) => {
      const subscription = subscriptions.get(name);
      if (!subscription) return;
      clearTimeout(subscription.timer);
      subscription.unlisten();
      subscription.unregister();
      subscriptions.delete(name);
    };

    const acknowledge = async () => {
      for (const [name, built] of lastResponse?.entries ?? []) {
        const subscription = subscriptions.get(name);
        if (!subscription) continue;
        await watchers.ack(subscription.ring, { identity: context.identity, nodeId: nodeId! }, built.epoch);
      }
    };

    const onRequest = async (request: DiscoveryRequest) => {
      if (nodeId === undefined) {
        const id = request.node?.id ?? '';
        if (!nodeIdPattern.test(id)) {
          throw new KeyfleetError(
            ErrorCode.InvalidArgument,
            'node.id: the first DiscoveryRequest names the node (1 to 128 printable ASCII characters)',
          );
        }
        nodeId = id;
      }
      if (request.type_url !== '' && request.type_url !== secretTypeUrl) {
        throw new KeyfleetError(
          ErrorCode.InvalidArgument,
          `type_url: this stream serves ${secretTypeUrl}, got "${request.type_url.slice(0, 120)}"`,
        );
      }
      if (request.response_nonce !== '' && request.response_nonce !== lastNonce) return; // stale
      if (request.response_nonce !== '' && lastResponse) {
        if (request.error_detail) {
          for (const [name] of lastResponse.entries) metrics.nacks.inc({ resource: name });
          logger.warn(
            {
              node: nodeId,
              identity: context.identity,
              version: lastResponse.version,
              error: request.error_detail.message.slice(0, 500),
            },
            'SDS NACK: the client rejected the ticket keys and keeps its last good version',
          );
        } else if (request.version_info === lastResponse.version) {
          await acknowledge();
        }
      }
      const wanted = new Set(request.resource_names);
      for (const name of [...subscriptions.keys()]) if (!wanted.has(name)) unsubscribe(name);
      for (const name of wanted) if (!subscriptions.has(name)) await subscribe(name, request.version_info);
      push('request');
    };

    metrics.streams.inc();
    try {
      await new Promise<void>((resolve, reject) => {
        failure = reject;
        if (context.signal.aborted) return resolve();
        context.signal.addEventListener('abort', () => resolve(), { once: true });
        stream.on('end', () => resolve());
        // Requests are handled one at a time, in order.
        let queue = Promise.resolve();
        stream.on('data', (request: DiscoveryRequest) => {
          queue = queue.then(() => onRequest(request)).catch(fail);
        });
      });
    } finally {
      metrics.streams.dec();
      for (const name of [...subscriptions.keys()]) unsubscribe(name);
    }
  };

  const unimplemented = async (): Promise<never> => {
    throw new KeyfleetError(
      ErrorCode.Unimplemented,
      'keyfleet serves SDS over StreamSecrets and FetchSecrets',
    );
  };

  return {
    definition: secretDiscoveryServiceDefinition(),
    handlers: {
      StreamSecrets: streamSecrets,
      DeltaSecrets: unimplemented,
      FetchSecrets: fetchSecrets,
    },
    // Each requested resource's ring is checked against the caller's node grant.
    access: {
      StreamSecrets: methodAccess.known,
      DeltaSecrets: methodAccess.known,
      FetchSecrets: methodAccess.known,
    },
  };
}
