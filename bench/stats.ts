// Benchmark support: the statistics every bench reports with, defined once.

/** The p-th percentile (0-100) by nearest rank: a value that was measured, never an interpolation; NaN for none. */
export function pct(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The median: the lower middle value of an even count. */
export const median = (xs: readonly number[]): number => pct(xs, 50);

/** `x` rounded to `d` decimals. */
export const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
