/**
 * Event-loop delay, GC pauses and CPU of the functions and of the benchmark itself over a phase:
 * each function's probe (bench/probe.ts) writes its figures since the last request on SIGUSR2.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Stack } from '../../scripts/stack.js';
import { type LoopSnapshot, loopMonitor } from '../loop.js';
import { PROBE_DIR } from '../settings.js';
import { sleep } from './common.js';

export interface PhaseLoop {
  api: LoopSnapshot | undefined;
  subscriber: LoopSnapshot | undefined;
  bench: LoopSnapshot;
}

/** The benchmark's own event loop (the callers); `bench/run.ts` stops it at the end. */
export const benchLoop = loopMonitor();

/** Asks a function's probe for its figures since the last request (and resets them). */
async function probeSnapshot(pid: number): Promise<LoopSnapshot | undefined> {
  const file = join(PROBE_DIR, `${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + 5_000;
  while (performance.now() < deadline) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as LoopSnapshot;
      } catch {
        // written meanwhile
      }
    }
    await sleep(5);
  }
  return undefined;
}

/** Starts recording every process's event-loop delay, GC pauses and CPU; the result stops. */
export async function startLoop(stack: Stack): Promise<() => Promise<PhaseLoop>> {
  const pids = [stack.api.process.pid as number, stack.subscriber.process.pid as number];
  await Promise.all(pids.map(probeSnapshot));
  benchLoop.take();
  return async () => {
    const bench = benchLoop.take();
    const [api, subscriber] = await Promise.all(pids.map(probeSnapshot));
    return { api, subscriber, bench };
  };
}

/** Runs `fn` and records every process's event-loop delay, GC pauses and CPU meanwhile. */
export async function withLoop<T>(stack: Stack, fn: () => Promise<T>): Promise<[T, PhaseLoop]> {
  const stop = await startLoop(stack);
  const result = await fn();
  return [result, await stop()];
}
