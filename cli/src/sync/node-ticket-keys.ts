import { nodeTicketKeys } from '@keyfleet/tls-engine';
import type { TicketKeyOrder } from '@keyfleet/tls-engine';

/**
 * Node's static `ticketKeys` (48 bytes: name | HMAC 16 | AES 16) for servers
 * that do not use lib/tls-engine. Node holds one key, which both seals and
 * opens, so this is the encrypting key; tickets under retired keys get a full
 * handshake there. Servers that need the whole decrypt window use the engine's
 * per-ticket hook instead.
 */
export function nodeTicketKeysFile(order: TicketKeyOrder): Buffer {
  if (!order.encrypting)
    throw new Error('the ring has no key to encrypt with: refusing to write Node ticket keys');
  return nodeTicketKeys(order.encrypting.name, order.encrypting.secret);
}
