/** When to fetch again; resolved once by compileOcspFetchOptions. */
export interface RefreshPolicy {
  /** Refresh at this fraction of the validity window (thisUpdate → nextUpdate). */
  readonly refreshAtFraction: number;
  /** ± this fraction of the window, spread at random so certificates do not refresh in lockstep. */
  readonly jitterFraction: number;
  /** Never later than nextUpdate minus this (or minus a quarter of the window, if smaller). */
  readonly safetyMarginMs: number;
  /** Never sooner than this after now, whatever the response says. */
  readonly minRefreshDelayMs: number;
  /** First retry delay after a failure; doubles per consecutive failure of the responder. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

/**
 * The next fetch after a validated response: about `refreshAtFraction` into
 * the validity window with jitter, never later than a safety margin before
 * nextUpdate (so a failing responder leaves time for retries before the
 * staple expires), never sooner than `minRefreshDelayMs` (or a fiftieth of the
 * window, when that leaves time) from now. `random` is in [0, 1).
 */
export function nextRefreshAtMs(
  policy: RefreshPolicy,
  window: { thisUpdateMs: number; nextUpdateMs: number },
  nowMs: number,
  random: number,
): number {
  const validityMs = Math.max(0, window.nextUpdateMs - window.thisUpdateMs);
  const jitterMs = (random * 2 - 1) * policy.jitterFraction * validityMs;
  const targetMs = window.thisUpdateMs + policy.refreshAtFraction * validityMs + jitterMs;
  const latestMs = window.nextUpdateMs - Math.min(policy.safetyMarginMs, validityMs / 4);
  // A responder that serves pre-signed responses may hand back one already
  // past its refresh point until it signs the next: wait a fiftieth of the
  // window before asking again, but never more than a quarter of what is left.
  const floorMs = Math.max(
    policy.minRefreshDelayMs,
    Math.min(validityMs / 50, (window.nextUpdateMs - nowMs) / 4),
  );
  return Math.round(Math.max(nowMs + floorMs, Math.min(targetMs, latestMs)));
}

/**
 * The next attempt after a failure: exponential in the responder's
 * consecutive failures (1 = the first), capped, with jitter in [50 %, 100 %]
 * so retries of many certificates on one responder spread out.
 */
export function nextRetryAtMs(
  policy: RefreshPolicy,
  consecutiveFailures: number,
  nowMs: number,
  random: number,
): number {
  const exponent = Math.min(Math.max(consecutiveFailures, 1) - 1, 30);
  const ceilingMs = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** exponent);
  return Math.round(nowMs + ceilingMs * (0.5 + random / 2));
}
