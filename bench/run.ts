/**
 * `npm run bench [-- --runs N] [-- --cpu-prof]`: what users care about, measured on this machine
 * against the emulators, each figure beside a baseline measured in the same run (absolute times on
 * shared machines are noise). Every repeated measurement runs N times (default 3) on one stack;
 * the printed figures and bench.json's top-level figures are the median of the runs, `spread`
 * holds [lowest, highest] of every figure, `runDetails` each run. `--cpu-prof` writes a CPU
 * profile of both functions for each measured phase to bench-results/probe/.
 *
 * This file orchestrates; each measurement is a file of bench/measure/:
 *
 * 1. floor.ts: Pub/Sub publish→streaming pull and publish→push latency at the completion rate,
 *    push throughput to an endpoint that does nothing, Bigtable read and conditional-write latency.
 * 2. wake.ts: wake-up latency, from a worker's succeed() accepted by Pub/Sub to the waiting
 *    caller's response, for the service's wait (woken by the wake-up topic) and two polling
 *    baselines, with the Bigtable reads and safety-net polls per wait and the wait's stages
 *    (bench/stages.ts); the event-loop delay and GC pauses of the API, the subscriber and the
 *    benchmark over the same phase (bench/measure/phase-loop.ts, bench/probe.ts); the same at 100
 *    completions a second (saturation).
 * 3. events.ts: event throughput end to end and the subscriber's CPU per event.
 * 4. cpu.ts: CPU per event, per GET and per wait beside the same work done by the clients alone.
 * 5. api.ts: API throughput (autocannon) for get and create against a bare HTTP server's (once).
 * 6. memory.ts: memory of one API instance holding 1,000 and 5,000 waits (once).
 * And bench/sweeper.ts: one sweep and heartbeats (once).
 *
 * Before the functions start, the emulators carry the floor's traffic once, unreported: the
 * figure of fresh functions (their first completions, measured first) is theirs, not a fresh
 * emulator's.
 *
 * bench-results/bench.json: its schema, keys and types are bench/results.ts (read by
 * `npm run capacity`). */

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { ROOT } from '../scripts/run-function.js';
import { type Stack, startStack } from '../scripts/stack.js';
import { answerHelp } from '../scripts/usage.js';
import { freePort, startEmulators } from '../shared/local/emulators.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import { ensureTable } from '../shared/service/store/bigtable/operation-store.js';
import { wakeChart } from './chart.js';
import type { LoopSnapshot } from './loop.js';
import { measureApi } from './measure/api.js';
import { agent, say, suffix } from './measure/common.js';
import { measureCpu } from './measure/cpu.js';
import { measureEvents } from './measure/events.js';
import { measureFloor } from './measure/floor.js';
import { measureWaitMemory } from './measure/memory.js';
import { benchLoop, type PhaseLoop } from './measure/phase-loop.js';
import { measureWake, type WakeResult } from './measure/wake.js';
import { report } from './report.js';
import { type BenchResults, encodeBenchResults, type RunFigures, STRATEGIES } from './results.js';
import { medianOfRuns, spreadOfRuns } from './runs.js';
import {
  COMPLETIONS_PER_SECOND,
  EVENT_OPS,
  EVENTS_PER_OP,
  PROBE_DIR,
  RESULTS_DIR,
  SATURATION_PER_SECOND,
  SATURATION_WAITS,
  scale,
  WAITS,
} from './settings.js';
import { breakdown, STAGES } from './stages.js';
import { round } from './stats.js';
import { measureSweeper } from './sweeper.js';
import { ratiosOf, targetsOf } from './targets.js';

answerHelp(
  `Usage: npm run bench -- [--runs N] [--cpu-prof]
  Starts a local stack and measures wake-up latency (against polling baselines), event and API
  throughput and CPU, and memory; writes bench-results/bench.json and wake-latency.svg.
  --runs N      runs on one stack; figures are their median (default 3)
  --cpu-prof    also a CPU profile of each function per phase, in bench-results/probe/
  BENCH_SCALE=F scales the load (default 1).`,
  { takesArguments: true },
);

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : (argv[i + 1] ?? '');
};
const RUNS = Math.max(1, Number(flag('--runs') ?? '3') || 3);
const CPU_PROFILE = argv.includes('--cpu-prof');

/** Latencies of one run, for the chart. */
interface Charted {
  ours: number[];
  fixed: number[];
  backoff: number[];
  push: number[];
}

/** One run of every repeated measurement, on the given stack. */
async function measureRun(
  stack: Stack,
  run: number,
): Promise<{ figures: RunFigures; charted: Charted }> {
  say(`run ${run}/${RUNS}: floor, Pub/Sub and Bigtable on their own…`);
  const { pushValues, ...floor } = await measureFloor(stack, run);
  const wake = {} as Record<(typeof STRATEGIES)[number], WakeResult>;
  for (const strategy of STRATEGIES) {
    say(`run ${run}/${RUNS}: wake-up latency: ${strategy}, ${WAITS} concurrent waits…`);
    wake[strategy] = await measureWake(
      stack,
      strategy,
      COMPLETIONS_PER_SECOND,
      WAITS,
      strategy === 'wake-up wait',
    );
  }
  say(`run ${run}/${RUNS}: saturation: ${SATURATION_PER_SECOND} completions a second…`);
  const saturated = await measureWake(
    stack,
    'wake-up wait',
    SATURATION_PER_SECOND,
    SATURATION_WAITS,
    true,
  );
  const saturationLoop = saturated.loop as PhaseLoop;
  say(`run ${run}/${RUNS}: event throughput: ${EVENT_OPS * EVENTS_PER_OP} events…`);
  const events = await measureEvents(stack, run);
  say(`run ${run}/${RUNS}: CPU per event and per GET beside the clients alone…`);
  const cpu = await measureCpu(stack);
  const ours = wake['wake-up wait'];
  const loop = ours.loop as PhaseLoop;
  const cpuShare = (l: LoopSnapshot | undefined) =>
    l ? round(l.cpuMs / l.elapsedMs, 2) : Number.NaN;
  const figures: RunFigures = {
    floor,
    wake: Object.fromEntries(
      STRATEGIES.map((k) => {
        const { values: _v, timestamps: _t, loop: _l, ...figures } = wake[k];
        return [k, figures];
      }),
    ) as RunFigures['wake'],
    stages: breakdown(ours.timestamps),
    loop: { api: loop.api, subscriber: loop.subscriber, bench: loop.bench },
    saturation: {
      completionsPerSecond: SATURATION_PER_SECOND,
      waits: SATURATION_WAITS,
      latencyMs: saturated.latencyMs,
      missed: saturated.missed,
      stages: breakdown(saturated.timestamps),
      pushFloorMs: floor.pubsubPushSaturationMs,
      loop: saturationLoop,
      cpuShare: {
        api: cpuShare(saturationLoop.api),
        subscriber: cpuShare(saturationLoop.subscriber),
      },
    },
    cpu: {
      subscriberMsPerEvent: events.subscriberCpuMsPerEvent,
      ...cpu,
      apiMsPerWait: round((loop.api?.cpuMs ?? Number.NaN) / WAITS, 3),
      subscriberMsPerCompletion: round((loop.subscriber?.cpuMs ?? Number.NaN) / WAITS, 3),
    },
    events,
  };
  const charted = {
    ours: ours.values,
    fixed: wake['fixed 1 s polling'].values,
    backoff: wake['backoff 100 ms x1.3'].values,
    push: pushValues,
  };
  return { figures, charted };
}

/** The chart of the run whose wake-up-wait p99 is the median one. */
function chart(runs: Array<{ figures: RunFigures; charted: Charted }>): string {
  const byP99 = [...runs].sort(
    (a, b) =>
      a.figures.wake['wake-up wait'].latencyMs.p99 - b.figures.wake['wake-up wait'].latencyMs.p99,
  );
  const shown = byP99[Math.floor((byP99.length - 1) / 2)] as (typeof runs)[number];
  return wakeChart(
    `Wake-up latency, ${WAITS} concurrent waits, ${COMPLETIONS_PER_SECOND} completions/s (emulators, one machine; run ${runs.indexOf(shown) + 1} of ${RUNS}, the median p99)`,
    [
      { label: 'wake-up wait', values: shown.charted.ours, colour: '#1a73e8' },
      { label: 'backoff 100 ms ×1.3', values: shown.charted.backoff, colour: '#e8710a' },
      { label: 'fixed 1 s polling', values: shown.charted.fixed, colour: '#d93025' },
      { label: 'floor: Pub/Sub push alone', values: shown.charted.push, colour: '#5f6368' },
    ],
    shown.figures.stages,
    Object.fromEntries(STAGES.map((st) => [st.key, st.label])),
  );
}

async function main() {
  const env: Record<string, string | undefined> = {
    LRO_BIGTABLE_TABLE: `bench-${suffix}`,
    LRO_EVENTS_TOPIC: `bench-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `bench-notifications-${suffix}`,
    LRO_WAKEUPS_TOPIC: `bench-wakeups-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `bench-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: process.env.BIGTABLE_EMULATOR_HOST,
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
    // Event-loop delay and GC of the functions (bench/probe.ts); CPU profiles on request.
    BENCH_PROBE_DIR: PROBE_DIR,
    NODE_OPTIONS: `--import ${resolve(ROOT, 'dist/bench/probe.js')}`,
    ...(CPU_PROFILE ? { BENCH_CPU_PROFILE: '1' } : {}),
  };
  mkdirSync(PROBE_DIR, { recursive: true });
  // The emulators start first and carry the floor's traffic once (not reported) before the
  // functions start: they stand in for Pub/Sub and Bigtable, which are never fresh, and a fresh
  // emulator's first pushes are slower by itself (a JVM's first minutes), which the fresh
  // functions' figure below would otherwise count as theirs.
  say(`starting the emulators, and warming them… (${RUNS} runs)`);
  const emulators = await startEmulators({ env });
  env.BIGTABLE_EMULATOR_HOST = emulators.bigtable;
  env.PUBSUB_EMULATOR_HOST = emulators.pubsub;
  const stack = await (async () => {
    try {
      const config = loadConfig(env);
      await ensureTable(config);
      await measureFloor({ config }, 0);
      say('starting the functions…');
      return await startStack({ env, apiPort: await freePort(), subscriberPort: await freePort() });
    } catch (err) {
      await emulators.stop();
      throw err;
    }
  })();
  try {
    // Fresh functions: their first events and waits load modules, open connections and run code
    // the JIT has not compiled yet. Measured once, as its own figure (what a new instance's first
    // callers see); the runs below start once both functions have served that many.
    say(`fresh functions: their first ${WAITS} completions and waits…`);
    const fresh = await measureWake(stack, 'wake-up wait', COMPLETIONS_PER_SECOND, WAITS);
    const runs: Array<Awaited<ReturnType<typeof measureRun>>> = [];
    for (let run = 1; run <= RUNS; run++) runs.push(await measureRun(stack, run));
    say('API throughput…');
    const api = await measureApi(stack);
    say('memory of concurrent waits…');
    const memory = await measureWaitMemory(stack);
    const sweeper = await measureSweeper(stack.config, say);
    const m = medianOfRuns(runs.map((r) => r.figures));
    const results: BenchResults = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      scale,
      runs: RUNS,
      ...m,
      fresh: { latencyMs: fresh.latencyMs, stages: breakdown(fresh.timestamps) },
      targets: targetsOf(m),
      ratios: ratiosOf(m, api),
      api,
      memory,
      sweeper,
      spread: spreadOfRuns(runs.map((r) => r.figures)),
      runDetails: runs.map((r) => ({ ...r.figures, targets: targetsOf(r.figures) })),
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    let text: string;
    try {
      text = encodeBenchResults(results);
    } catch (err) {
      // Keep the run's figures for a look, apart from the file other tools read.
      writeFileSync(resolve(RESULTS_DIR, 'bench.invalid.json'), JSON.stringify(results, null, 2));
      throw err;
    }
    writeFileSync(resolve(RESULTS_DIR, 'bench.json'), text);
    writeFileSync(resolve(RESULTS_DIR, 'wake-latency.svg'), chart(runs));
    process.stdout.write(`${report(results)}\n`);
  } catch (err) {
    say(`API output (last lines):\n${stack.api.output().slice(-3_000)}`);
    throw err;
  } finally {
    agent.destroy();
    benchLoop.stop();
    await stack.stop();
    await emulators.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
