/**
 * The ticket keys as SDS resources: `ticket-keys/<ring>` is the ring's keys
 * as Envoy's `session_ticket_keys` (see envoy-ticket-key-secret.ts for the
 * bytes and order), changing when the ring does and when a key activates or
 * expires. A subscribed Envoy is a watcher of the ring under its mTLS
 * identity and node id, and its ACKs count toward the ring's ack coverage
 * and ack-gated promotion, as a WatchKeySet node's do.
 */
import {
  ErrorCode,
  KeyfleetError,
  type CallContext,
  type SdsResource,
  type SecretSource,
  sharedBuiltSecret,
} from '@keyfleet/service-kit';
import type { RingState } from '../schedule/key-set-view.js';
import { checkRingName } from '../schedule/ring-params.js';
import { toProtoKeySet } from '../schedule/key-set-view.js';
import type { KeySetHub } from '../stream/key-set-hub.js';
import type { WatcherRegistry } from '../stream/watcher-registry.js';
import {
  envoyTicketKeySecret,
  ringOfResource,
  ticketKeyResourcePrefix,
  type EnvoyTicketKeySecret,
} from './envoy-ticket-key-secret.js';

export interface TicketKeySecretSourceDeps {
  readonly hub: KeySetHub;
  readonly watchers: WatcherRegistry;
  readonly clock: () => number;
}

export function ticketKeySecretSource(deps: TicketKeySecretSourceDeps): SecretSource<EnvoyTicketKeySecret> {
  const { hub, watchers, clock } = deps;
  // A ring's state is replaced on every change: every stream of the ring shares one build of it.
  const secretOf = sharedBuiltSecret(
    (state: RingState, nowMs: number) =>
      envoyTicketKeySecret(
        `${ticketKeyResourcePrefix}${state.params.ring}`,
        toProtoKeySet(state, nowMs),
        nowMs,
      ),
    clock,
  );
  return {
    serves: `${ticketKeyResourcePrefix}<ring>`,
    metricLabel: (name) => name,

    async resolve(name: string, context: CallContext): Promise<SdsResource<EnvoyTicketKeySecret>> {
      const ring = ringOfResource(name);
      if (ring === undefined) {
        throw new KeyfleetError(
          ErrorCode.NotFound,
          `SDS resource "${name.slice(0, 80)}": ticket-keys serves ${ticketKeyResourcePrefix}<ring>`,
        );
      }
      checkRingName(ring, 'resource_names');
      if (!context.access.allows('node', ring)) {
        throw new KeyfleetError(
          ErrorCode.PermissionDenied,
          `${context.method}: ${JSON.stringify(context.identity)} has no node grant for ring "${ring}"`,
        );
      }
      if (!(hub.current(ring) ?? (await hub.load(ring)))) {
        throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" does not exist`);
      }
      return {
        current: () => secretOf(hub.current(ring)),
        listen: (onChange) => hub.listen(ring, () => onChange()),
        attach: (node) => watchers.add(ring, node),
        acknowledge: (node, built) => watchers.ack(ring, node, built.epoch),
      };
    },
  };
}
