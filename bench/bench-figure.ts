/**
 * One benchmark figure, printed as one JSON line by bench/run.ts. `baseline`
 * is measured in the same run (so machines compare with themselves) and
 * `ratio` is value / baseline.
 */
export interface BenchFigure {
  readonly bench: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: number;
  readonly ratio: number;
}

/** A figure with its ratio computed (0 when the baseline is 0). */
export function figure(
  bench: string,
  metric: string,
  value: number,
  unit: string,
  baseline: number,
): BenchFigure {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    bench,
    metric,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio: baseline === 0 ? 0 : round(value / baseline),
  };
}

/** The p-th percentile (0–100) of `samples` by nearest rank; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** A monotonic stopwatch in milliseconds. */
export function startTimer(): () => number {
  const started = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - started) / 1e6;
}
