/**
 * Seconds from a change to the last ACK: per resource, the version this
 * replica is sending now, when it first went out, and the streams that have
 * not applied it yet. When the last of them ACKs (or the rest have gone),
 * the time since the first send is observed once. A version superseded
 * before it converged is dropped unobserved: its successor's time covers it.
 */
interface Rollout {
  readonly version: string;
  readonly firstSentAtMs: number;
  readonly waiting: Set<number>;
  acked: number;
}

export class SdsConvergence {
  readonly #rollouts = new Map<string, Rollout>();
  readonly #clock: () => number;
  readonly #observe: (resource: string, seconds: number) => void;

  constructor(clock: () => number, observe: (resource: string, seconds: number) => void) {
    this.#clock = clock;
    this.#observe = observe;
  }

  /** A stream was sent `version` of `resource`. */
  sent(resource: string, version: string, stream: number): void {
    let rollout = this.#rollouts.get(resource);
    if (rollout?.version !== version) {
      rollout = { version, firstSentAtMs: this.#clock(), waiting: new Set(), acked: 0 };
      this.#rollouts.set(resource, rollout);
    }
    rollout.waiting.add(stream);
  }

  /** A stream ACKed `version` of `resource`. */
  acked(resource: string, version: string, stream: number): void {
    const rollout = this.#rollouts.get(resource);
    if (rollout?.version !== version || !rollout.waiting.delete(stream)) return;
    rollout.acked++;
    this.#settle(resource, rollout);
  }

  /** A stream unsubscribed or closed: it is no longer waited for. */
  left(resource: string, stream: number): void {
    const rollout = this.#rollouts.get(resource);
    if (!rollout?.waiting.delete(stream)) return;
    this.#settle(resource, rollout);
  }

  /** Resources with a rollout still waiting for ACKs (tests, debugging). */
  waiting(resource: string): number {
    return this.#rollouts.get(resource)?.waiting.size ?? 0;
  }

  #settle(resource: string, rollout: Rollout): void {
    if (rollout.waiting.size > 0) return;
    this.#rollouts.delete(resource);
    if (rollout.acked > 0) this.#observe(resource, (this.#clock() - rollout.firstSentAtMs) / 1000);
  }
}
