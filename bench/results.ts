/**
 * `bench-results/bench.json`, the results of `npm run bench`: one zod schema, the only
 * description of the file. `bench/run.ts` encodes its results through it before writing (a
 * figure that is not a number, a key missing or one the schema does not name fails the run), and
 * `npm run capacity` (scripts/capacity.ts) decodes the file through it (a malformed file is a
 * clear error, naming the key).
 *
 * JSON has no NaN: a figure a measurement could not produce (no sample, a missing header) is
 * written as null and read back as NaN.
 *
 * The keys, top level first (ms unless named otherwise):
 *   date, machine {cpus, node}, scale, runs (count)                     — the invocation
 *   floor      Pub/Sub and Bigtable on their own (bench/measure/floor.ts)
 *   wake       per strategy: latency, Bigtable reads, safety-net polls and requests per wait
 *              (bench/measure/wake.ts), 30 completions/s
 *   stages     the wake-up wait split into stages (bench/stages.ts)
 *   loop       event loop, GC and CPU of the API, the subscriber and the benchmark over that wait
 *   saturation the same wait at 100 completions/s, with its stages, push floor and CPU share
 *   cpu        CPU per event, per GET, per wait, beside the same work alone (bench/measure/cpu.ts)
 *   events     event throughput end to end (bench/measure/events.ts)
 *   — each of the above the median of the runs —
 *   fresh      the first wake-up wait of fresh functions, once, before the runs (the emulators
 *              having carried the floor's traffic once before the functions started)
 *   targets    {value, limit, met, baseline} from the medians
 *   ratios     figures over their baselines from the medians
 *   api        GET and create throughput beside a bare HTTP server (bench/measure/api.ts), once
 *   memory     one API instance holding waits (bench/measure/memory.ts), once
 *   sweeper    one sweep and heartbeats (bench/sweeper.ts), once
 *   spread     the repeated figures' shape, each number [lowest, highest] of the runs ([] if none)
 *   runDetails each run's figures in full, with its targets
 * Summary = {count, p50, p95, p99, mean, max}. BENCH_SCALE (default 1) scales the counts.
 */
import { z } from 'zod';

/**
 * A measured number: NaN (or infinite) in memory when the measurement produced none, null in
 * the file.
 */
const figure = z.codec(
  z.number().nullable(),
  z.custom<number>((v) => typeof v === 'number', 'expected a number'),
  {
    decode: (v) => v ?? Number.NaN,
    encode: (v) => (Number.isFinite(v) ? v : null),
  },
);

const summary = z.strictObject({
  count: figure,
  p50: figure,
  p95: figure,
  p99: figure,
  mean: figure,
  max: figure,
});

/** The three ways a caller learns that an operation ended, as bench.json's `wake` names them. */
export const STRATEGIES = ['wake-up wait', 'fixed 1 s polling', 'backoff 100 ms x1.3'] as const;
export type Strategy = (typeof STRATEGIES)[number];

const STAGE_KEYS = ['push', 'write', 'publish', 'pull', 'respond', 'return'] as const;

const stageBreakdown = z.strictObject({
  /** Waits woken by a wake-up (the others by a read: the first one, or a safety-net poll). */
  woken: figure,
  stages: z.record(z.enum(STAGE_KEYS), summary),
  subscriberInFlight: z.strictObject({ p50: figure, max: figure }),
  /** Push received by the subscriber → response received by the caller. */
  afterPush: summary,
});

const loopSnapshot = z.strictObject({
  delayMs: z.strictObject({ p50: figure, p99: figure, max: figure, mean: figure }),
  gc: z.strictObject({
    count: figure,
    totalMs: figure,
    maxMs: figure,
    major: figure,
    majorMaxMs: figure,
  }),
  cpuMs: figure,
  elapsedMs: figure,
});

/** A function's snapshot is absent when its probe did not answer. */
const phaseLoop = z.strictObject({
  api: loopSnapshot.optional(),
  subscriber: loopSnapshot.optional(),
  bench: loopSnapshot,
});

const floor = z.strictObject({
  pubsubPullMs: summary,
  pubsubPushMs: summary,
  pushPerSecond: figure,
  bigtableReadMs: summary,
  bigtableConditionalWriteMs: summary,
  /** Push at the saturation measurement's completion rate. */
  pubsubPushSaturationMs: summary,
  /** p50 of the wake-up's path without the service: push, conditional write, pull, read. */
  completionFloorP50Ms: figure,
});

const wake = z.strictObject({
  latencyMs: summary,
  /** Bigtable reads per wait: for the wake-up wait the API's own count, polls included. */
  readsPerWait: figure,
  /** Of those, the safety-net polls (the wake-up wait only). */
  safetyNetPollsPerWait: figure.optional(),
  requestsPerWait: figure,
  missed: figure,
});

const cpu = z.strictObject({
  subscriberMsPerEvent: figure,
  writeAndPublishAloneMsPerEvent: figure,
  apiMsPerGet: figure,
  storeReadAloneMsPerGet: figure,
  apiMsPerUnroutedRequest: figure,
  frameworkMsPerRequest: figure,
  storeReadInChildMsPerGet: figure,
  storeReadInDomainMsPerGet: figure,
  apiMsPerWait: figure,
  subscriberMsPerCompletion: figure,
  getLoop: phaseLoop,
});

const events = z.strictObject({
  events: figure,
  operationsFinished: figure,
  publishSeconds: figure,
  endToEndSeconds: figure,
  eventsPerSecond: figure,
  subscriberCpuMsPerEvent: figure,
  notificationsSeen: figure,
});

/** The figures of one run: every one of them repeated `runs` times and folded into a median. */
const runFigures = z.strictObject({
  floor,
  wake: z.record(z.enum(STRATEGIES), wake),
  stages: stageBreakdown,
  loop: phaseLoop,
  saturation: z.strictObject({
    completionsPerSecond: figure,
    waits: figure,
    latencyMs: summary,
    missed: figure,
    stages: stageBreakdown,
    pushFloorMs: summary,
    loop: phaseLoop,
    /** Cores busy over the phase. */
    cpuShare: z.strictObject({ api: figure, subscriber: figure }),
  }),
  cpu,
  events,
});

const target = z.strictObject({
  value: figure,
  limit: z.number(),
  met: z.boolean(),
  baseline: z.string(),
});

const targets = z.strictObject({
  wakeP99OverP50: target,
  wakeP50OverFloorP50: target,
  subscriberCpuOverAlone: target,
  apiGetCpuOverStoreRead: target,
});

const cannon = z.strictObject({
  requestsPerSecond: figure,
  latencyMs: z.strictObject({ p50: figure, p97_5: figure, p99: figure }),
  non2xx: figure,
  errors: figure,
});

const sweeper = z.strictObject({
  runningOperations: figure,
  overdue: figure,
  sweep: z.strictObject({
    ended: figure,
    rowsRead: figure,
    rowsReadPerEnded: figure,
    durationMs: figure,
  }),
  scanBaseline: z.strictObject({ rowsRead: figure, durationMs: figure, rowsReadOverSweep: figure }),
  heartbeat: z.strictObject({
    writeMs: summary,
    readsPerHeartbeat: figure,
    conditionalWritesPerHeartbeat: figure,
    writesPerOperationPerMinute: figure,
    intervalMs: figure,
  }),
});

/** A zod schema of the same shape, each figure replaced by `leaf`; `loose`: every key optional. */
function reshape(schema: z.ZodType, leaf: z.ZodType, loose: boolean): z.ZodType {
  if (schema === figure) return leaf;
  if (schema instanceof z.ZodOptional)
    return reshape(schema.unwrap() as z.ZodType, leaf, loose).optional();
  if (schema instanceof z.ZodArray)
    return z.array(reshape(schema.element as z.ZodType, leaf, loose));
  if (schema instanceof z.ZodRecord) {
    // Read any key (e.g. a strategy of an older file, ignored); write exactly the named ones.
    const key = loose ? z.string() : schema.keyType;
    return z.record(key as z.ZodString, reshape(schema.valueType as z.ZodType, leaf, loose));
  }
  if (schema instanceof z.ZodObject) {
    const shape = Object.fromEntries(
      Object.entries(schema.shape as Record<string, z.ZodType>).map(([k, v]) => {
        const reshaped = reshape(v, leaf, loose);
        return [k, loose ? reshaped.optional() : reshaped];
      }),
    );
    return loose ? z.object(shape) : z.strictObject(shape);
  }
  return loose ? schema.optional() : schema;
}

const SpreadPair = z.union([z.tuple([z.number(), z.number()]), z.tuple([])]);

export const benchResultsSchema = z.strictObject({
  date: z.string(),
  machine: z.strictObject({ cpus: z.number(), node: z.string() }),
  scale: z.number(),
  runs: z.number(),
  ...runFigures.shape,
  fresh: z.strictObject({ latencyMs: summary, stages: stageBreakdown }),
  targets,
  ratios: z.strictObject({
    fixedPollingP50OverOurs: figure,
    backoffP50OverOurs: figure,
    fixedPollingReadsOverOurs: figure,
    backoffReadsOverOurs: figure,
    oursP50OverFloor: figure,
    eventThroughputOverPushFloor: figure,
    getOverBareHttp: figure,
  }),
  api: z.strictObject({ get: cannon, create: cannon, bareHttpBaseline: cannon }),
  memory: z.strictObject({
    idleMiB: figure,
    with1000WaitsMiB: figure,
    with5000WaitsMiB: figure,
    perWaitKiB: figure,
  }),
  sweeper,
  spread: reshape(runFigures, SpreadPair, false) as z.ZodType<unknown>,
  runDetails: z.array(runFigures.extend({ targets })),
});

export type BenchResults = z.output<typeof benchResultsSchema>;
export type RunFigures = z.output<typeof runFigures>;
export type FloorFigures = z.output<typeof floor>;
export type WakeFigures = z.output<typeof wake>;
export type CpuFigures = z.output<typeof cpu>;
export type EventFigures = z.output<typeof events>;
export type ApiFigures = z.output<typeof cannon>;
export type MemoryFigures = BenchResults['memory'];
export type Targets = z.output<typeof targets>;
export type Target = z.output<typeof target>;

/**
 * What a reader takes from a bench.json: the same schema with every key optional (a file of an
 * older benchmark lacks newer figures; the reader falls back figure by figure), keys it does not
 * know ignored, and every value that is present of the schema's type.
 */
const readableSchema = reshape(benchResultsSchema, figure, true) as z.ZodType<
  DeepPartial<BenchResults>
>;

type DeepPartial<T> = T extends number | string | boolean
  ? T
  : T extends Array<infer U>
    ? Array<DeepPartial<U>>
    : { [K in keyof T]?: DeepPartial<T[K]> | undefined };

export type ReadableBenchResults = DeepPartial<BenchResults>;

/** The JSON text to write, the results checked against the schema first. */
export function encodeBenchResults(results: BenchResults): string {
  const checked = benchResultsSchema.safeEncode(results);
  if (!checked.success) {
    throw new Error(
      `the results do not match bench/results.ts:\n${z.prettifyError(checked.error)}`,
    );
  }
  return `${JSON.stringify(checked.data, null, 2)}\n`;
}

/** A bench.json's text decoded through the schema; a clear error naming the file when malformed. */
export function decodeBenchResults(text: string, path: string): ReadableBenchResults {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not JSON: ${(err as Error).message}`);
  }
  const parsed = readableSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `${path} is not a result of npm run bench (bench/results.ts):\n${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}
