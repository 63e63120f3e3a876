import { createHash } from 'node:crypto';
import type { KeySet } from '@keyfleet/proto';
import { keyNameHex, nextTransitionMs, nginxTicketKeyFile, ticketKeyOrderAt } from '@keyfleet/tls-engine';
import type { EnvoySecret } from '@keyfleet/service-kit';

/** SDS resource names for ticket keys: `ticket-keys/<ring>`. */
export const ticketKeyResourcePrefix = 'ticket-keys/';

/** The ring a resource name names, or undefined when it is not a ticket-key resource. */
export function ringOfResource(name: string): string | undefined {
  return name.startsWith(ticketKeyResourcePrefix) ? name.slice(ticketKeyResourcePrefix.length) : undefined;
}

export interface EnvoyTicketKeySecret {
  readonly secret: EnvoySecret;
  /** Changes whenever the bytes do: the epoch and a digest of the key names in order (never of secrets). */
  readonly version: string;
  readonly epoch: number;
  /** Hex key names in the order sent (for logs: names are public). */
  readonly keyNames: readonly string[];
  /** When the order next changes (a key activates or expires) with no new epoch. */
  readonly nextChangeAtMs: number | undefined;
}

/**
 * A ring's keys as Envoy's `session_ticket_keys`: 80 bytes each (name 16 |
 * HMAC 32 | AES 32, the layout and derivation nginx's key files use), the
 * key that encrypts first (Envoy seals with the first and opens with all),
 * then PENDING keys (so every Envoy opens a key before any seals with it),
 * then DECRYPT_ONLY keys newest first; revoked and expired keys are gone.
 * Undefined when no key can encrypt: Envoy must not get an empty list.
 */
export function envoyTicketKeySecret(
  resourceName: string,
  keySet: KeySet,
  nowMs: number,
): EnvoyTicketKeySecret | undefined {
  const order = ticketKeyOrderAt(keySet, nowMs);
  if (!order.encrypting) return undefined;
  const keys = [order.encrypting, ...order.pending, ...order.decryptOnly];
  const keyNames = keys.map((key) => keyNameHex(key.name));
  const digest = createHash('sha256').update(keyNames.join(',')).digest('hex').slice(0, 16);
  return {
    secret: {
      name: resourceName,
      session_ticket_keys: {
        keys: keys.map((key) => ({ inline_bytes: nginxTicketKeyFile(key.name, key.secret) })),
      },
    },
    version: `${keySet.epoch}-${digest}`,
    epoch: keySet.epoch,
    keyNames,
    nextChangeAtMs: nextTransitionMs(keySet, nowMs),
  };
}
