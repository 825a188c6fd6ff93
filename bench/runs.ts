/**
 * Several runs of the same measurements folded into one figure each: the median of the runs for
 * every number, and the spread (lowest and highest run), since one run is not a figure on a
 * shared machine.
 */

function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function fold(values: unknown[], pick: (numbers: number[]) => unknown): unknown {
  const first = values[0];
  if (typeof first === 'number') return pick(values as number[]);
  if (Array.isArray(first) || typeof first !== 'object' || first === null) return first;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) {
    out[key] = fold(
      values.map((v) => (v as Record<string, unknown>)[key]),
      pick,
    );
  }
  return out;
}

/** The same shape as one run, every number the median of the runs. */
export function medianOfRuns<T>(runs: T[]): T {
  return fold(runs, (n) => Number(median(n).toFixed(2))) as T;
}

/** The same shape as one run, every number `[lowest, highest]` over the runs. */
export function spreadOfRuns(runs: unknown[]): unknown {
  return fold(runs, (n) => {
    const finite = n.filter((v) => Number.isFinite(v));
    return finite.length ? [Math.min(...finite), Math.max(...finite)] : [];
  });
}
