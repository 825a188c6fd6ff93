/**
 * Loaded into the functions by the benchmark (`node --import dist/bench/probe.js`, through
 * NODE_OPTIONS): an event-loop delay histogram (perf_hooks.monitorEventLoopDelay) and the garbage
 * collector's pauses, written as JSON to `$BENCH_PROBE_DIR/<pid>.json` and reset on SIGUSR2, so
 * that the benchmark reads them for exactly the phase it measured. With BENCH_CPU_PROFILE set,
 * each phase's CPU profile goes to `$BENCH_PROBE_DIR/<pid>-<n>.cpuprofile` as well (open it in
 * Chrome's DevTools). Not loaded outside benchmarks.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { loopMonitor } from './loop.js';

const dir = process.env.BENCH_PROBE_DIR;
if (dir) {
  const monitor = loopMonitor();
  let session: Session | undefined;
  let phase = 0;
  if (process.env.BENCH_CPU_PROFILE) {
    session = new Session();
    session.connect();
    session.post('Profiler.enable', () => session?.post('Profiler.start'));
  }
  process.on('SIGUSR2', () => {
    const snapshot = monitor.take();
    const profiling = session;
    if (!profiling) {
      writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(snapshot));
      return;
    }
    profiling.post('Profiler.stop', (err, result) => {
      if (!err) {
        writeFileSync(
          join(dir, `${process.pid}-${phase++}.cpuprofile`),
          JSON.stringify(result.profile),
        );
      }
      profiling.post('Profiler.start', () => {
        writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(snapshot));
      });
    });
  });
}
