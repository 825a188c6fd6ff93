/**
 * The benchmark's load and where it writes, shared by `bench/run.ts`, the measurements in
 * `bench/measure/` and the printed report. BENCH_SCALE (default 1) scales the counts.
 */
import { join, resolve } from 'node:path';
import { ROOT } from '../scripts/run-function.js';

export const scale = Number(process.env.BENCH_SCALE ?? '1') || 1;
/** Concurrent waits of the wake-up measurement, and completions a second over them. */
export const WAITS = Math.round(300 * scale);
export const COMPLETIONS_PER_SECOND = 30;
/** The same wait at a higher completion rate. */
export const SATURATION_PER_SECOND = 100;
export const SATURATION_WAITS = Math.round(600 * scale);
/** Operations of the event-throughput measurement, and events per operation (the last ends it). */
export const EVENT_OPS = Math.round(200 * scale);
export const EVENTS_PER_OP = 10;
/** GETs and writes of the CPU measurement. */
export const CPU_READS = Math.round(2_000 * scale);
export const CPU_WRITES = Math.round(1_000 * scale);

export const RESULTS_DIR = resolve(ROOT, 'bench-results');
/** Where the functions' probes (bench/probe.ts) write their figures and CPU profiles. */
export const PROBE_DIR = join(RESULTS_DIR, 'probe');
