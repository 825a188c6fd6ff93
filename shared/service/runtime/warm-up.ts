/**
 * Warm before traffic: an instance makes its first calls to Bigtable and Pub/Sub while it starts,
 * before the functions framework listens, so that its first callers do not pay for them (the
 * credentials lookup, building each gapic client from its protos, opening the channels, the first
 * ReadRows, CheckAndMutateRow and publisher call: about 180 ms of the first request otherwise).
 *
 * Each function registers what its instance uses (`onWarmUp`); functions/index.ts awaits
 * `warmUpBeforeTraffic()` at the end of its module, which the framework imports before it listens.
 * Only the served function's steps run (the framework's --target flag, or FUNCTION_TARGET as the
 * platform sets it). Nothing is written that anyone sees: the store's warm-up reads and
 * conditionally mutates a row that no operation uses and that never exists, and Pub/Sub is asked
 * for a topic's metadata (GetTopic, on the publisher's client), not sent a message.
 *
 * Bounded: after LRO_WARM_UP_TIMEOUT (5 s by default; "0s" turns it off) the instance starts
 * anyway, and an instance that cannot reach Bigtable or Pub/Sub starts and answers as it would
 * have (UNAVAILABLE). The steps' calls carry that timeout too; any failure is logged, never thrown.
 */
import { performance } from 'node:perf_hooks';
import { Code, LroError } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import { loadConfig } from './config.js';

/** One first call: named for the log, bounded by `timeoutMs`. */
export interface WarmUpStep {
  name: string;
  run(timeoutMs: number): Promise<unknown>;
}

/** The steps of one function's instance, built when its warm-up starts. */
export type WarmUpPlan = () => WarmUpStep[];

const plans = new Map<string, WarmUpPlan>();

/** Registers what an instance serving `target` warms up. */
export function onWarmUp(target: string, plan: WarmUpPlan): void {
  plans.set(target, plan);
}

/** The function this process serves: the framework's --target flag, else FUNCTION_TARGET. */
export function servedTarget(argv: readonly string[], functionTarget: string | undefined) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith('--target=')) return arg.slice('--target='.length);
    if (arg === '--target' && argv[i + 1] !== undefined) return argv[i + 1];
  }
  return functionTarget;
}

export type WarmUpOutcome = 'done' | 'failed' | 'timed out' | 'off' | 'none';

/** How this process's warm-up ended, and its bound (rehearsal.ts runs after 'done', as bounded). */
export interface WarmUpEnd {
  outcome: WarmUpOutcome;
  timeoutMs: number;
}

let ended: WarmUpEnd | undefined;

/** How this process's warm-up ended; undefined before it ends. */
export function warmUpEnd(): WarmUpEnd | undefined {
  return ended;
}

export interface WarmUpOptions {
  argv?: readonly string[];
  env?: Record<string, string | undefined>;
  log?: Logger;
}

/** Runs the served function's warm-up, within the configured bound; never throws. */
export async function warmUpBeforeTraffic(options: WarmUpOptions = {}): Promise<WarmUpOutcome> {
  let timeoutMs: number;
  let target: string | undefined;
  try {
    const config = loadConfig(options.env);
    timeoutMs = config.warmUpTimeoutMs;
    target = servedTarget(options.argv ?? process.argv, config.functionTarget);
  } catch {
    // The first request reports the configuration problem, as without a warm-up.
    ended = { outcome: 'none', timeoutMs: 0 };
    return 'none';
  }
  const outcome = await warmUp(target, timeoutMs, options.log ?? defaultLog);
  ended = { outcome, timeoutMs };
  return outcome;
}

async function warmUp(
  target: string | undefined,
  timeoutMs: number,
  log: Logger,
): Promise<WarmUpOutcome> {
  const plan = target === undefined ? undefined : plans.get(target);
  if (!plan) return 'none';
  if (timeoutMs === 0) return 'off';
  const started = performance.now();
  const steps: Record<string, number> = {};
  const failures: Record<string, string> = {};
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), timeoutMs);
  });
  const work = (async () => {
    const planned = plan();
    await Promise.all(
      planned.map(async (step) => {
        try {
          await step.run(timeoutMs);
          steps[step.name] = Math.round(performance.now() - started);
        } catch (err) {
          // An answer is an answer: a missing table or topic (the local stack provisions them
          // after the functions start) still warmed the client, its channel and credentials.
          if (answered(err)) steps[step.name] = Math.round(performance.now() - started);
          else failures[step.name] = err instanceof Error ? err.message : String(err);
        }
      }),
    );
    return Object.keys(failures).length > 0 ? ('failed' as const) : ('done' as const);
  })().catch((err: unknown) => {
    failures.plan = err instanceof Error ? err.message : String(err);
    return 'failed' as const;
  });
  const outcome = await Promise.race([work, late]);
  clearTimeout(timer);
  const fields = { target, outcome, ms: Math.round(performance.now() - started), steps };
  if (outcome === 'done') log.info('instance warmed up', fields);
  else log.warn('instance starts without a complete warm-up', { ...fields, failures });
  return outcome;
}

/** Whether a failed call was answered by the service (not unreachable, not timed out). */
function answered(err: unknown): boolean {
  // The store wraps the client's error (as INTERNAL): its cause carries the gRPC code.
  const inner = err instanceof LroError && err.cause !== undefined ? err.cause : err;
  const code = inner instanceof LroError ? inner.code : (inner as { code?: unknown } | null)?.code;
  return code === Code.NOT_FOUND || code === Code.PERMISSION_DENIED;
}

/** A store that can make its first calls without writing (BigtableOperationStore). */
interface WarmableStore {
  warmUp?(timeoutMs: number): Promise<void>;
}

/** The first calls of an instance's store and publisher (GetTopic on `topic`). */
export function firstCalls(parts: {
  store: object;
  messaging?: Pick<Messaging, 'checkReachable' | 'warmPublisher'> | undefined;
  topic: string;
}): WarmUpStep[] {
  const steps: WarmUpStep[] = [];
  const store = parts.store as WarmableStore;
  if (typeof store.warmUp === 'function') {
    steps.push({ name: 'bigtable', run: (ms) => store.warmUp?.(ms) ?? Promise.resolve() });
  }
  const messaging = parts.messaging;
  if (messaging) {
    steps.push({
      name: 'pubsub',
      run: async (ms) => {
        await messaging.checkReachable(parts.topic, ms);
        await messaging.warmPublisher(ms);
      },
    });
  }
  return steps;
}
