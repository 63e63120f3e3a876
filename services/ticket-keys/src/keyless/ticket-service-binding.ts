import type { Registry } from 'prom-client';
import {
  TicketServiceService,
  TicketStatus,
  type ConnectionContext,
  type KeySet,
  type OpenTicketRequest,
  type OpenTicketResponse,
  type SealTicketRequest,
  type SealTicketResponse,
} from '@keyfleet/proto';
import {
  createTicketEngine,
  engineMetrics,
  InvalidKeySetError,
  NoActiveKeyError,
  ticketKeyRingFromKeySet,
  ticketLimits,
  type TicketConnection,
  type TicketEngine,
  type TicketKeyRing,
  type TicketPolicy,
} from '@keyfleet/tls-engine';
import {
  ErrorCode,
  invalidArgument,
  KeyfleetError,
  methodAccess,
  type ServiceBinding,
  type UnaryHandler,
} from '@keyfleet/service-kit';
import { checkRingName } from '../schedule/ring-params.js';

/** Where keyless mode reads key sets: the service's own in-memory view of each ring. */
export interface KeySetsByRing {
  /** The ring's current key set with secrets, or undefined when the ring does not exist. */
  current(ring: string): KeySet | undefined;
}

export interface TicketServiceBindingOptions {
  /** Milliseconds since the epoch. Default Date.now. */
  clock?: () => number;
  /** Decision steps, as on nodes. Default: the engine's defaultTicketPolicies(). */
  policies?: readonly TicketPolicy[];
  /** Issue times up to this far in the future are accepted. Default 30000, as on nodes. */
  maxClockSkewMs?: number;
  /** Registry for the keyfleet_engine_* decision metrics. Default: none. */
  metrics?: Registry;
}

const encoder = new TextEncoder();

function sameKeys(held: KeySet | undefined, next: KeySet): boolean {
  if (!held || held.epoch !== next.epoch || held.keys.length !== next.keys.length) return false;
  if (held.revokedKeyNames.length !== next.revokedKeyNames.length) return false;
  return held.keys.every((key, index) => {
    const other = next.keys[index]!;
    return key.activatesAtMs === other.activatesAtMs && Buffer.compare(key.name, other.name) === 0;
  });
}

/** The contract's context as the engine's, checked against the ticket format's limits. */
function connectionOf(context: ConnectionContext | undefined, strict: boolean): TicketConnection {
  const serverName = context?.serverName ?? '';
  const clientIdentity = context?.clientIdentity ?? '';
  if (strict && encoder.encode(serverName).length > ticketLimits.maxServerNameBytes) {
    throw invalidArgument('context.server_name', `must be at most ${ticketLimits.maxServerNameBytes} bytes`);
  }
  if (strict && encoder.encode(clientIdentity).length > ticketLimits.maxClientIdentityBytes) {
    throw invalidArgument(
      'context.client_identity',
      `must be at most ${ticketLimits.maxClientIdentityBytes} bytes`,
    );
  }
  return { serverName, clientIdentity, alpnProtocol: context?.alpnProtocol ?? '' };
}

/**
 * Keyless mode: TicketService.SealTicket and OpenTicket for nodes and load
 * balancers that never hold keys, answered by the same engine (codec, key
 * schedule, decision policies) a node runs, so both give the same answer for
 * the same ticket at the same moment. Both need the ring's node grant: they
 * use its secrets as a node would.
 *
 * Errors: a malformed ring name, or a session, appdata or context field over
 * its limit in SealTicket, is INVALID_ARGUMENT; an unknown ring is NOT_FOUND; a
 * ring with no usable key set is FAILED_PRECONDITION. An oversized ticket in
 * OpenTicket is not an error: like every ticket that does not open it is
 * answered NO_DECRYPT, here with reason TOO_LARGE — what a node would say.
 */
export function createTicketServiceBinding(
  source: KeySetsByRing,
  options: TicketServiceBindingOptions = {},
): ServiceBinding {
  const clock = options.clock ?? Date.now;
  const metrics = options.metrics ? engineMetrics(options.metrics) : undefined;
  // One engine per ring, reading a key ring rebuilt only when the source hands out a new KeySet.
  const rings = new Map<string, { engine: TicketEngine; held: { keySet?: KeySet; keys?: TicketKeyRing } }>();

  const engineFor = (ringName: string): TicketEngine => {
    checkRingName(ringName);
    const keySet = source.current(ringName);
    if (!keySet) throw new KeyfleetError(ErrorCode.NotFound, `ring "${ringName}" does not exist`);
    let entry = rings.get(ringName);
    if (!entry) {
      const held: { keySet?: KeySet; keys?: TicketKeyRing } = {};
      const engine = createTicketEngine({
        ring: ringName,
        keys: { current: () => held.keys },
        clock,
        ...(options.policies ? { policies: options.policies } : {}),
        ...(options.maxClockSkewMs !== undefined ? { maxClockSkewMs: options.maxClockSkewMs } : {}),
        ...(metrics ? { metrics } : {}),
      });
      entry = { engine, held };
      rings.set(ringName, entry);
    }
    const { held } = entry;
    // Sources may build a fresh KeySet object per call; the epoch changes with every change to
    // the ring, so the key ring (and its derived keys) is rebuilt only when the epoch or keys differ.
    if (held.keySet !== keySet && !sameKeys(held.keySet, keySet)) {
      try {
        held.keys = ticketKeyRingFromKeySet(keySet, held.keys);
        held.keySet = keySet;
      } catch (error) {
        if (!(error instanceof InvalidKeySetError)) throw error;
        throw new KeyfleetError(ErrorCode.FailedPrecondition, `ring "${ringName}" has no usable key set`, {
          cause: error,
        });
      }
    }
    return entry.engine;
  };

  const sealTicket: UnaryHandler<SealTicketRequest, SealTicketResponse> = async (request) => {
    if (request.session.length > ticketLimits.maxSessionBytes) {
      throw invalidArgument(
        'session',
        `is ${request.session.length} bytes, at most ${ticketLimits.maxSessionBytes}`,
      );
    }
    if (request.appdata.length > ticketLimits.maxAppdataBytes) {
      throw invalidArgument(
        'appdata',
        `is ${request.appdata.length} bytes, at most ${ticketLimits.maxAppdataBytes}`,
      );
    }
    const connection = connectionOf(request.context, true);
    const engine = engineFor(request.ring);
    try {
      const sealed = engine.generate(request.session, request.appdata, connection);
      return {
        ticket: Buffer.from(sealed.ticket),
        keyName: Buffer.from(sealed.keyName),
        lifetimeHintMs: sealed.lifetimeHintMs,
        epoch: sealed.epoch,
      };
    } catch (error) {
      if (error instanceof NoActiveKeyError) {
        throw new KeyfleetError(ErrorCode.FailedPrecondition, `ring "${request.ring}" has no ACTIVE key`);
      }
      throw error;
    }
  };

  const openTicket: UnaryHandler<OpenTicketRequest, OpenTicketResponse> = async (request) => {
    const engine = engineFor(request.ring);
    const result = engine.decrypt(request.ticket, connectionOf(request.context, false));
    const opened = result.status === TicketStatus.SUCCESS || result.status === TicketStatus.SUCCESS_RENEW;
    const bytes = (value: Uint8Array | undefined) => (value ? Buffer.from(value) : Buffer.alloc(0));
    return {
      status: result.status,
      decision: result.decision,
      reason: result.reason,
      session: bytes(opened ? result.session : undefined),
      appdata: bytes(opened ? result.appdata : undefined),
      issuedAtMs: result.issuedAtMs ?? 0,
      keyName: bytes(result.keyName),
      renewedTicket: bytes(result.renewedTicket),
      lifetimeHintMs: result.renewedLifetimeHintMs ?? 0,
      epoch: result.epoch ?? 0,
    };
  };

  return {
    definition: TicketServiceService,
    handlers: {
      sealTicket: sealTicket,
      openTicket: openTicket,
    },
    access: {
      SealTicket: methodAccess.ring((request: SealTicketRequest) => checkRingName(request.ring), 'node'),
      OpenTicket: methodAccess.ring((request: OpenTicketRequest) => checkRingName(request.ring), 'node'),
    },
  };
}
