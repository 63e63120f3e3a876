import type { KeySet } from '@keyfleet/proto';
import { toProtoKeySet } from '../schedule/key-set-view.js';
import type { KeySetHub } from './key-set-hub.js';

/**
 * What the keyless TicketService needs: a ring's current key set, with
 * secrets, from memory. Kept fresh by the same pub/sub fan-out as the watch
 * streams; no I/O on the call.
 */
export interface KeySetSource {
  current(ring: string): KeySet | undefined;
}

/** A KeySetSource over the hub's cache; `clock` stamps serverTimeMs and key states. */
export function keySetSourceOf(
  hub: Pick<KeySetHub, 'current'>,
  clock: () => number = Date.now,
): KeySetSource {
  return {
    current(ring) {
      const state = hub.current(ring);
      return state ? toProtoKeySet(state, clock()) : undefined;
    },
  };
}
