/**
 * Envoy's Secret Discovery Service for whatever a SecretSource serves, with
 * the xDS protocol as Envoy speaks it, over both transports:
 *
 * - StreamSecrets (state of the world): the first request names the node; a
 *   request carrying the last response's nonce and no error ACKs that
 *   response's version, one with `error_detail` NACKs it (logged, counted, the
 *   client keeps its last good version); a request with an older nonce is
 *   stale and ignored; a response holds every subscribed resource that exists
 *   and goes out only when one of them changed. After a reconnect the client
 *   names the version it holds: nothing is sent while that is current.
 * - DeltaSecrets: resources are subscribed and unsubscribed by name;
 *   `initial_resource_versions` says what a reconnecting client holds; a
 *   response carries only what changed, and names what no longer exists in
 *   `removed_resources`. ACK and NACK as above, per nonce.
 * - FetchSecrets: the named resources once.
 *
 * ACKs are passed to the source (ticket-keys counts them toward the ring's
 * ack coverage) under the caller's mTLS identity and node id.
 */
import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, KeyfleetError } from '../keyfleet-error.js';
import type { Logger } from '../logger.js';
import { methodAccess, type CallContext, type ServiceBinding } from '../service-server.js';
import {
  packSecret,
  secretDiscoveryServiceDefinition,
  secretTypeUrl,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type PackedResource,
} from './envoy-api.js';
import { SdsConvergence } from './sds-convergence.js';
import type { SdsMetrics } from './sds-metrics.js';
import type { BuiltSecret, SdsNode, SdsResource, SecretSource } from './secret-source.js';

export interface SecretDiscoveryOptions<Built extends BuiltSecret> {
  readonly source: SecretSource<Built>;
  readonly metrics: SdsMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
}

/** Node ids are kept as watcher names; Envoy's are host names or pod names. */
const nodeIdPattern = /^[\x21-\x7e]{1,128}$/;
/** Resource names: `kind/<name>`, printable ASCII, bounded. */
const resourceNamePattern = /^[\x21-\x7e]{1,200}$/;
/** A stream subscribes to a handful of secrets; more is a misbehaving client. */
const maxResourcesPerStream = 64;
/** Delta responses a client may leave unacknowledged before their ACKs stop counting. */
const unackedResponsesKept = 16;

type Entry<Built> = readonly [name: string, built: Built];

interface Subscription<Built extends BuiltSecret> {
  readonly resource: SdsResource<Built>;
  /** What this stream last sent (or the client said it holds). */
  sent: Built | undefined;
  readonly unlisten: () => void;
  readonly detach: () => void;
  timer: NodeJS.Timeout | undefined;
}

export function secretDiscoveryServiceBinding<Built extends BuiltSecret>(
  options: SecretDiscoveryOptions<Built>,
): ServiceBinding {
  const { source, metrics, logger, clock } = options;
  const convergence = new SdsConvergence(clock, (name, seconds) =>
    metrics.convergence.observe({ resource: source.metricLabel(name) }, seconds),
  );
  let streamCount = 0;
  // Builds are shared by every stream (sharedBuiltSecret): so is their encoding.
  const encoded = new WeakMap<Built, PackedResource>();
  const pack = (built: Built): PackedResource => {
    let packed = encoded.get(built);
    if (!packed) encoded.set(built, (packed = packSecret(built.secret)));
    return packed;
  };

  const checkName = (name: string) => {
    if (!resourceNamePattern.test(name)) {
      throw new KeyfleetError(
        ErrorCode.InvalidArgument,
        `resource name "${name.slice(0, 80)}": 1 to 200 printable ASCII characters (${source.serves})`,
      );
    }
  };

  const checkTypeUrl = (typeUrl: string) => {
    if (typeUrl !== '' && typeUrl !== secretTypeUrl) {
      throw new KeyfleetError(
        ErrorCode.InvalidArgument,
        `type_url: this service serves ${secretTypeUrl}, got "${typeUrl.slice(0, 120)}"`,
      );
    }
  };

  const nodeOf = (request: { node: { id: string } | null }, context: CallContext): SdsNode => {
    const id = request.node?.id ?? '';
    if (!nodeIdPattern.test(id)) {
      throw new KeyfleetError(
        ErrorCode.InvalidArgument,
        'node.id: the first request names the node (1 to 128 printable ASCII characters)',
      );
    }
    return { identity: context.identity, nodeId: id };
  };

  const logNack = (node: SdsNode, entries: readonly Entry<Built>[], message: string) => {
    for (const [name, built] of entries) {
      metrics.nacks.inc({ resource: source.metricLabel(name) });
      logger.warn(
        {
          node: node.nodeId,
          identity: node.identity,
          resource: name,
          version: built.version,
          error: message.slice(0, 500),
        },
        'SDS NACK: the client rejected the secret and keeps its last good version',
      );
    }
  };

  /**
   * One stream's subscriptions and what it was sent: the part SotW and Delta share.
   * `onChange` runs when a subscribed resource may have changed.
   */
  const streamSubscriptions = (context: CallContext, streamId: number, onChange: (why: string) => void) => {
    const subscriptions = new Map<string, Subscription<Built>>();

    /** Pushes again when the secret next changes with nothing announced (a key activating). */
    const arm = (name: string, subscription: Subscription<Built>, built: Built | undefined) => {
      clearTimeout(subscription.timer);
      subscription.timer = undefined;
      const at = built?.nextChangeAtMs;
      if (at === undefined) return;
      subscription.timer = setTimeout(
        () => onChange(`scheduled change of ${name}`),
        Math.max(0, at - clock()) + 5,
      );
      subscription.timer.unref();
    };

    return {
      names: () => [...subscriptions.keys()],
      has: (name: string) => subscriptions.has(name),

      /** `holds` says whether the client already holds a version (it names what it has after a reconnect). */
      async subscribe(node: SdsNode, name: string, holds: (version: string) => boolean): Promise<void> {
        checkName(name);
        if (subscriptions.has(name)) return;
        if (subscriptions.size >= maxResourcesPerStream) {
          throw new KeyfleetError(
            ErrorCode.ResourceExhausted,
            `a stream subscribes to at most ${maxResourcesPerStream} resources`,
          );
        }
        const resource = await source.resolve(name, context);
        if (subscriptions.has(name)) return;
        const current = resource.current();
        subscriptions.set(name, {
          resource,
          // A reconnecting client that holds the current version is sent nothing.
          sent: current && holds(current.version) ? current : undefined,
          unlisten: resource.listen(() => onChange(`${name} changed`)),
          detach: resource.attach(node),
          timer: undefined,
        });
      },

      unsubscribe(name: string): void {
        const subscription = subscriptions.get(name);
        if (!subscription) return;
        clearTimeout(subscription.timer);
        subscription.unlisten();
        subscription.detach();
        subscriptions.delete(name);
        convergence.left(name, streamId);
      },

      /** Every subscribed resource as it is now, which changed since sent, and which are gone. */
      survey(): { present: Entry<Built>[]; changed: Entry<Built>[]; removed: string[] } {
        const present: Entry<Built>[] = [];
        const changed: Entry<Built>[] = [];
        const removed: string[] = [];
        for (const [name, subscription] of subscriptions) {
          const built = subscription.resource.current();
          arm(name, subscription, built);
          if (built) {
            present.push([name, built]);
            if (built.version !== subscription.sent?.version) changed.push([name, built]);
          } else if (subscription.sent) {
            removed.push(name);
          }
        }
        return { present, changed, removed };
      },

      /** Records what went out in a response. */
      sent(entries: readonly Entry<Built>[], removed: readonly string[]): void {
        for (const [name, built] of entries) {
          subscriptions.get(name)!.sent = built;
          metrics.pushes.inc({ resource: source.metricLabel(name) });
          convergence.sent(name, built.version, streamId);
        }
        for (const name of removed) {
          const subscription = subscriptions.get(name);
          if (subscription) subscription.sent = undefined;
          convergence.left(name, streamId);
        }
      },

      async acknowledge(node: SdsNode, entries: readonly Entry<Built>[]): Promise<void> {
        for (const [name, built] of entries) {
          const subscription = subscriptions.get(name);
          if (!subscription) continue;
          convergence.acked(name, built.version, streamId);
          await subscription.resource.acknowledge(node, built);
        }
      },

      close(): void {
        for (const name of [...subscriptions.keys()]) this.unsubscribe(name);
      },
    };
  };

  /** Runs a bidirectional stream: requests one at a time, in order, until the client ends it. */
  const serveStream = async <Req>(
    api: 'sotw' | 'delta',
    stream: grpc.ServerDuplexStream<Req, unknown>,
    context: CallContext,
    onRequest: (request: Req) => Promise<void>,
    onClose: () => void,
  ): Promise<void> => {
    metrics.streams.inc({ api });
    try {
      await new Promise<void>((resolve, reject) => {
        if (context.signal.aborted) return resolve();
        context.signal.addEventListener('abort', () => resolve(), { once: true });
        stream.on('end', () => resolve());
        let queue = Promise.resolve();
        stream.on('data', (request: Req) => {
          queue = queue.then(() => onRequest(request)).catch(reject);
        });
      });
    } finally {
      metrics.streams.dec({ api });
      onClose();
    }
  };

  const writable = (stream: grpc.ServerDuplexStream<never, unknown>, context: CallContext) =>
    !stream.cancelled && !stream.writableEnded && !context.signal.aborted;

  const streamSecrets = async (
    stream: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
    context: CallContext,
  ): Promise<void> => {
    const streamId = ++streamCount;
    let node: SdsNode | undefined;
    let nonceCount = 0;
    let last: { nonce: string; version: string; entries: Entry<Built>[] } | undefined;

    const push = (why: string) => {
      if (!writable(stream as grpc.ServerDuplexStream<never, unknown>, context)) return;
      const { present, changed } = subscriptions.survey();
      if (changed.length === 0) return;
      const version = present.map(([, built]) => built.version).join(',');
      last = { nonce: String(++nonceCount), version, entries: present };
      stream.write({
        version_info: version,
        resources: present.map(([, built]) => pack(built)),
        type_url: secretTypeUrl,
        nonce: last.nonce,
      });
      subscriptions.sent(present, []);
      logger.debug({ node: node?.nodeId, resources: subscriptions.names(), version, why }, 'SDS push');
    };
    const subscriptions = streamSubscriptions(context, streamId, push);

    const onRequest = async (request: DiscoveryRequest) => {
      node ??= nodeOf(request, context);
      checkTypeUrl(request.type_url);
      if (request.response_nonce !== '') {
        if (request.response_nonce !== last?.nonce) return; // stale: a newer response is on its way
        if (request.error_detail) logNack(node, last.entries, request.error_detail.message);
        else if (request.version_info === last.version) await subscriptions.acknowledge(node, last.entries);
      }
      const wanted = new Set(request.resource_names);
      for (const name of subscriptions.names()) if (!wanted.has(name)) subscriptions.unsubscribe(name);
      // The version a client sends names every resource it holds, comma-joined as we send them.
      const held = new Set(request.version_info.split(','));
      for (const name of wanted) await subscriptions.subscribe(node, name, (version) => held.has(version));
      push('request');
    };

    await serveStream('sotw', stream, context, onRequest, () => subscriptions.close());
  };

  const deltaSecrets = async (
    stream: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
    context: CallContext,
  ): Promise<void> => {
    const streamId = ++streamCount;
    let node: SdsNode | undefined;
    let nonceCount = 0;
    /** Responses not yet answered, by nonce (Delta may have several in flight). */
    const unacked = new Map<string, Entry<Built>[]>();

    const push = (why: string) => {
      if (!writable(stream as grpc.ServerDuplexStream<never, unknown>, context)) return;
      const { changed, removed } = subscriptions.survey();
      if (changed.length === 0 && removed.length === 0) return;
      const nonce = String(++nonceCount);
      unacked.set(nonce, changed);
      if (unacked.size > unackedResponsesKept) unacked.delete(unacked.keys().next().value!);
      stream.write({
        system_version_info: '',
        resources: changed.map(([name, built]) => ({
          name,
          version: built.version,
          resource: pack(built),
        })),
        type_url: secretTypeUrl,
        removed_resources: removed,
        nonce,
      });
      subscriptions.sent(changed, removed);
      logger.debug(
        { node: node?.nodeId, changed: changed.map(([name]) => name), removed, why },
        'SDS delta push',
      );
    };
    const subscriptions = streamSubscriptions(context, streamId, push);

    const onRequest = async (request: DeltaDiscoveryRequest) => {
      const first = node === undefined;
      node ??= nodeOf(request, context);
      checkTypeUrl(request.type_url);
      if (request.response_nonce !== '') {
        const entries = unacked.get(request.response_nonce);
        unacked.delete(request.response_nonce);
        if (entries && request.error_detail) logNack(node, entries, request.error_detail.message);
        else if (entries) await subscriptions.acknowledge(node, entries);
      }
      for (const name of request.resource_names_unsubscribe) subscriptions.unsubscribe(name);
      // What a reconnecting client holds counts only on the stream's first request.
      const held = first ? (request.initial_resource_versions ?? {}) : {};
      const names = new Set([...request.resource_names_subscribe, ...(first ? Object.keys(held) : [])]);
      for (const name of names)
        await subscriptions.subscribe(node, name, (version) => held[name] === version);
      push('request');
    };

    await serveStream('delta', stream, context, onRequest, () => subscriptions.close());
  };

  /** One-shot: the named resources as they are now (no node, nonce or ACK). */
  const fetchSecrets = async (
    request: DiscoveryRequest,
    context: CallContext,
  ): Promise<DiscoveryResponse> => {
    if (request.resource_names.length === 0 || request.resource_names.length > 16) {
      throw new KeyfleetError(ErrorCode.InvalidArgument, 'resource_names: name 1 to 16 resources');
    }
    checkTypeUrl(request.type_url);
    const built: Built[] = [];
    for (const name of request.resource_names) {
      checkName(name);
      const current = (await source.resolve(name, context)).current();
      if (current) built.push(current);
    }
    return {
      version_info: built.map((secret) => secret.version).join(','),
      resources: built.map((secret) => pack(secret)),
      type_url: secretTypeUrl,
      nonce: '',
    };
  };

  return {
    definition: secretDiscoveryServiceDefinition(),
    handlers: { StreamSecrets: streamSecrets, DeltaSecrets: deltaSecrets, FetchSecrets: fetchSecrets },
    // Any known caller; the source checks each requested resource against the caller's grant.
    access: {
      StreamSecrets: methodAccess.known,
      DeltaSecrets: methodAccess.known,
      FetchSecrets: methodAccess.known,
    },
  };
}
