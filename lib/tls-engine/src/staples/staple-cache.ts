/** A staple as a node holds it: the DER to send and the window it is valid in. */
export interface CachedStaple {
  readonly der: Uint8Array;
  readonly thisUpdateMs: number;
  /** Zero means the response had no nextUpdate: never served. */
  readonly nextUpdateMs: number;
  readonly certStatus: 'good' | 'revoked' | 'unknown' | 'unspecified';
}

/**
 * What a handshake may send: a fresh staple; nothing because none is held; or
 * nothing because the one held has passed its nextUpdate (never served).
 */
export type StapleLookup =
  | { readonly kind: 'fresh'; readonly staple: CachedStaple }
  | { readonly kind: 'expired'; readonly staple: CachedStaple }
  | { readonly kind: 'none' };

/**
 * Where `attach` finds staples: by certificate id (SHA-256 of the leaf DER),
 * judged against the clock at handshake time. Listeners let a source run its
 * stream only while a server uses it.
 */
export interface StapleSource {
  lookup(certificateId: string, nowMs: number): StapleLookup;
  addListener?(listener: () => void): void;
  removeListener?(listener: () => void): void;
}

/**
 * Staples by certificate id. The freshness check happens on every lookup, not
 * when a staple is stored, so a node that stops hearing from the service stops
 * stapling at nextUpdate instead of serving a stale response.
 */
export class StapleCache implements StapleSource {
  private readonly byId = new Map<string, CachedStaple>();
  private readonly listeners = new Set<() => void>();

  /** Stores (or, with undefined, forgets) the staple of one certificate. */
  set(certificateId: string, staple: CachedStaple | undefined): void {
    if (staple) this.byId.set(certificateId, staple);
    else this.byId.delete(certificateId);
    this.changed();
  }

  /** Replaces everything (a stream's snapshot). */
  replaceAll(entries: Iterable<[string, CachedStaple]>): void {
    this.byId.clear();
    for (const [id, staple] of entries) this.byId.set(id, staple);
    this.changed();
  }

  get size(): number {
    return this.byId.size;
  }

  lookup(certificateId: string, nowMs: number): StapleLookup {
    const staple = this.byId.get(certificateId);
    if (!staple) return { kind: 'none' };
    if (staple.nextUpdateMs <= 0 || nowMs >= staple.nextUpdateMs) return { kind: 'expired', staple };
    return { kind: 'fresh', staple };
  }

  /** Told after every change; for sources built on the cache. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
