/**
 * At most `perResponder` fetches in flight to one responder (by origin) from
 * this replica; further calls wait in FIFO order. CAs rate-limit and a fleet
 * refresh must not look like a flood.
 */
export class ResponderLimiter {
  readonly #perResponder: number;
  readonly #lanes = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(perResponder: number) {
    if (!Number.isInteger(perResponder) || perResponder < 1)
      throw new Error('perResponder must be at least 1');
    this.#perResponder = perResponder;
  }

  /** Fetches running or queued for `responder` right now. */
  load(responder: string): number {
    const lane = this.#lanes.get(responder);
    return lane ? lane.active + lane.waiting.length : 0;
  }

  async run<T>(responder: string, task: () => Promise<T>): Promise<T> {
    let lane = this.#lanes.get(responder);
    if (!lane) {
      lane = { active: 0, waiting: [] };
      this.#lanes.set(responder, lane);
    }
    if (lane.active >= this.#perResponder) {
      await new Promise<void>((resolve) => lane.waiting.push(resolve));
    } else {
      lane.active++;
    }
    try {
      return await task();
    } finally {
      const next = lane.waiting.shift();
      if (next) {
        next(); // the slot passes straight to the next waiter
      } else {
        lane.active--;
        if (lane.active === 0) this.#lanes.delete(responder);
      }
    }
  }
}

/** The responder label for metrics and limits: scheme, host and port of the URL. */
export function responderOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid-url';
  }
}
