import { createHash } from 'node:crypto';

/**
 * The session-id context for a ring. OpenSSL resumes a session only when the
 * context it was issued under matches the server's, and Node's default is a
 * hash of the process's own command line, so two processes of a fleet never
 * resume each other's tickets unless both set it. Deriving it from the ring
 * makes every node serving the ring agree, and keeps rings apart. 32 hex
 * characters: OpenSSL's limit is 32 bytes.
 */
export function sessionIdContextForRing(ring: string): string {
  return createHash('sha256').update(`keyfleet/v1 session-id-context ${ring}`).digest('hex').slice(0, 32);
}
