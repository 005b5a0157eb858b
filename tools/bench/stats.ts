/** Order statistics for bench samples: medians and spreads, never means (a slow outlier is a fact, not noise). */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
}

/** Linear interpolation between closest ranks, as numpy's default percentile does. */
function percentile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(values: number[]): Summary | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: percentile(s, 0.5), min: s[0], max: s[s.length - 1], p10: percentile(s, 0.1), p90: percentile(s, 0.9) };
}

/** "1.23 s (1.10-1.40, n=5)": median, then min-max for few samples and p10-p90 for many. */
export function formatSummary(s: Summary | null, unit: 's' | 'ms' | 'MB' | '%', digits = 3): string {
  if (!s) return 'no samples';
  const f = (v: number) => v.toFixed(digits);
  const spread = s.n === 1 ? '' : s.n >= 10 ? ` (p10-p90 ${f(s.p10)}-${f(s.p90)}, n=${s.n})` : ` (min-max ${f(s.min)}-${f(s.max)}, n=${s.n})`;
  return `${f(s.median)} ${unit}${spread}`;
}
