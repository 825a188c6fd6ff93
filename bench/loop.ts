/**
 * Event-loop delay and garbage-collection pauses of one process over a phase: what stalls a
 * process's callbacks. Used in the benchmark's own process and, through probe.ts, in the
 * functions it measures.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface LoopSnapshot {
  /**
   * Event-loop delay (ms): how much later than due the 10 ms sampling timer ran (the histogram
   * records the whole interval; the 10 ms are subtracted), i.e. how long callbacks waited.
   */
  delayMs: { p50: number; p99: number; max: number; mean: number };
  /** Garbage-collection pauses during the phase (major: mark-compact of the old space). */
  gc: { count: number; totalMs: number; maxMs: number; major: number; majorMaxMs: number };
  /** CPU time (user + system, ms) of the process during the phase. */
  cpuMs: number;
  elapsedMs: number;
}

export interface LoopMonitor {
  /** The figures since the last take (or the start), then starts over. */
  take(): LoopSnapshot;
  stop(): void;
}

export function loopMonitor(): LoopMonitor {
  const RESOLUTION_MS = 10;
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const empty = () => ({ count: 0, totalMs: 0, maxMs: 0, major: 0, majorMaxMs: 0 });
  let gc = empty();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMaxMs = Math.max(gc.majorMaxMs, entry.duration);
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  let cpu = process.cpuUsage();
  let since = performance.now();
  const ms = (ns: number) => Number(Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(2));
  return {
    take() {
      const used = process.cpuUsage(cpu);
      const snapshot: LoopSnapshot = {
        delayMs: {
          p50: ms(histogram.percentile(50)),
          p99: ms(histogram.percentile(99)),
          max: ms(histogram.max),
          mean: ms(histogram.mean),
        },
        gc: {
          ...gc,
          totalMs: Number(gc.totalMs.toFixed(1)),
          maxMs: Number(gc.maxMs.toFixed(1)),
          majorMaxMs: Number(gc.majorMaxMs.toFixed(1)),
        },
        cpuMs: (used.user + used.system) / 1000,
        elapsedMs: performance.now() - since,
      };
      histogram.reset();
      gc = empty();
      cpu = process.cpuUsage();
      since = performance.now();
      return snapshot;
    },
    stop() {
      histogram.disable();
      observer.disconnect();
    },
  };
}
