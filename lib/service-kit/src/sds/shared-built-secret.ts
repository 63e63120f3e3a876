/**
 * One built secret for every stream that holds the resource. Each stream asks
 * for the secret whenever it may have changed, so a rotation seen by 1,000
 * Envoys would otherwise build (and encode) the same Secret 1,000 times. The
 * build is kept for as long as its input is the same object (the sources'
 * inputs, a ring's state or a stored certificate, are replaced, never
 * changed in place) and its `nextChangeAtMs` has not come: the secret is
 * a function of the input and the time, and changes with time only there.
 */
import type { BuiltSecret } from './secret-source.js';

export function sharedBuiltSecret<Input extends object, Built extends BuiltSecret>(
  build: (input: Input, nowMs: number) => Built | undefined,
  clock: () => number,
): (input: Input | undefined) => Built | undefined {
  const builds = new WeakMap<Input, { built: Built | undefined; validUntilMs: number }>();
  return (input) => {
    if (input === undefined) return undefined;
    const now = clock();
    const kept = builds.get(input);
    if (kept && now < kept.validUntilMs) return kept.built;
    const built = build(input, now);
    builds.set(input, { built, validUntilMs: built?.nextChangeAtMs ?? Number.POSITIVE_INFINITY });
    return built;
  };
}
