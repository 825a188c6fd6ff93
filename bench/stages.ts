/**
 * A wake-up split into stages, from timestamps the components carry (epoch ms, one machine, one
 * clock): the worker's publish accepted (the benchmark), the push received and the Bigtable write
 * done (the subscriber, as wake-up attributes), the wake-up published (Pub/Sub's publishTime),
 * received by the API's listener and the response written after the woken read (the API, in the
 * `x-lro-wake-timing` header), and the response received (the benchmark). The stages add up to the
 * wake-up latency.
 */
import { round, type Summary, summarize } from './stats.js';

export const STAGES = [
  { key: 'push', label: 'worker publish → push received by the subscriber' },
  { key: 'write', label: 'push received → Bigtable write done' },
  { key: 'publish', label: 'write done → wake-up published' },
  { key: 'pull', label: 'wake-up published → received by the API' },
  { key: 'respond', label: 'received by the API → row read, response written' },
  { key: 'return', label: 'response written → received by the caller' },
] as const;

export type StageKey = (typeof STAGES)[number]['key'];

export interface WakeTimestamps {
  acceptedAt: number;
  doneAt: number;
  /** The `x-lro-wake-timing` header, when a wake-up woke the wait. */
  header?: string | undefined;
}

/** The header's `name=epochMs` pairs. */
export function parseTimingHeader(header: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const [key, value] = part.trim().split('=');
    if (key && value !== undefined && Number.isFinite(Number(value))) out[key] = Number(value);
  }
  return out;
}

/** Stage durations of one wake-up, or undefined when the wait was not woken by a wake-up. */
export function stagesOf(wake: WakeTimestamps): Record<StageKey, number> | undefined {
  const t = parseTimingHeader(wake.header);
  const points = [
    wake.acceptedAt,
    t.received,
    t.written,
    t.published,
    t.delivered,
    t.responded,
    wake.doneAt,
  ];
  if (points.some((p) => p === undefined)) return undefined;
  const p = points as number[];
  const out = {} as Record<StageKey, number>;
  STAGES.forEach((stage, i) => {
    out[stage.key] = (p[i + 1] as number) - (p[i] as number);
  });
  return out;
}

export interface StageBreakdown {
  /** Waits woken by a wake-up (the others by a read: the first one, or a safety-net poll). */
  woken: number;
  /** Per stage, p50/p95/p99 (negative clock-granularity differences counted as 0). */
  stages: Record<StageKey, Summary>;
  /**
   * Events the subscriber was handling (push received, wake-up not yet published) when
   * each push arrived, among these waits' completions: how many deliveries the push keeps in
   * flight.
   */
  subscriberInFlight: { p50: number; max: number };
  /**
   * From the push received by the subscriber to the response received by the caller: what the
   * functions (and the wake-up's delivery) add after Pub/Sub's push, which holds the emulator's
   * own queue of at most two pushes in flight.
   */
  afterPush: Summary;
}

export function breakdown(wakes: WakeTimestamps[]): StageBreakdown {
  const values = Object.fromEntries(STAGES.map((s) => [s.key, [] as number[]])) as Record<
    StageKey,
    number[]
  >;
  let woken = 0;
  const afterPush: number[] = [];
  const spans: Array<[number, number]> = [];
  for (const wake of wakes) {
    const t = parseTimingHeader(wake.header);
    if (t.received !== undefined && t.published !== undefined) {
      spans.push([t.received, t.published]);
    }
    const stages = stagesOf(wake);
    if (!stages) continue;
    woken++;
    for (const s of STAGES) values[s.key].push(Math.max(0, stages[s.key]));
    afterPush.push(Math.max(0, wake.doneAt - (t.received as number)));
  }
  const stages = Object.fromEntries(
    STAGES.map((s) => [s.key, roundSummary(summarize(values[s.key]))]),
  ) as Record<StageKey, Summary>;
  const inFlight = spans.map(([at]) => spans.filter(([from, to]) => from <= at && at < to).length);
  const sortedFlight = inFlight.sort((a, b) => a - b);
  return {
    woken,
    stages,
    subscriberInFlight: {
      p50: sortedFlight[Math.floor(sortedFlight.length / 2)] ?? Number.NaN,
      max: sortedFlight[sortedFlight.length - 1] ?? Number.NaN,
    },
    afterPush: roundSummary(summarize(afterPush)),
  };
}

export function roundSummary(s: Summary): Summary {
  return {
    count: s.count,
    p50: round(s.p50),
    p95: round(s.p95),
    p99: round(s.p99),
    mean: round(s.mean),
    max: round(s.max),
  };
}
