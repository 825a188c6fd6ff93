/**
 * `npm run test:loaded [-- --runs N] [-- --hogs N] [-- vitest arguments]`: the test suite with
 * every core kept busy by CPU hogs, to show that no test depends on the machine being idle.
 *
 * It starts N busy-looping node processes (default: one per core), runs `vitest run` with the
 * remaining arguments (the whole suite by default) the given number of times in a row (default 1),
 * stops the hogs, and exits with the first failing run's code (0 when every run passed). The hogs
 * run at normal priority, as a neighbour's build would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ROOT } from './run-function.js';

const HELP = `Usage: npm run test:loaded [-- --runs N] [-- --hogs N] [-- <vitest arguments>]

Runs the test suite (vitest run) with every core saturated by busy node processes.
  --runs N   run the suite N times in a row (default 1); stops at the first failure
  --hogs N   busy processes to start (default: one per core, ${availableParallelism()} here)
  other arguments go to vitest, e.g. test/service/wait.test.ts or --config vitest.faults.config.ts
`;

const { values, positionals } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    hogs: { type: 'string', default: String(availableParallelism()) },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: true,
  strict: false,
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const runs = Number(values.runs);
const hogCount = Number(values.hogs);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(hogCount) || hogCount < 0) {
  process.stderr.write(`test:loaded: --runs and --hogs take whole numbers\n${HELP}`);
  process.exit(2);
}
// Options parseArgs did not know (--config, -t, ...) are passed on to vitest as given.
const passThrough = process.argv
  .slice(2)
  .filter(
    (arg, i, all) => !/^--(runs|hogs)(=|$)/.test(arg) && !/^--(runs|hogs)$/.test(all[i - 1] ?? ''),
  );
void positionals;

function startHog(): ChildProcess {
  const hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  hog.unref();
  return hog;
}

const hogs = Array.from({ length: hogCount }, startHog);
const stopHogs = () => {
  for (const hog of hogs) if (hog.exitCode === null && hog.signalCode === null) hog.kill('SIGKILL');
};
process.on('exit', stopHogs);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    stopHogs();
    process.exit(130);
  });
}

function runSuite(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [`${ROOT}/node_modules/vitest/vitest.mjs`, 'run', ...passThrough],
      { cwd: ROOT, stdio: 'inherit' },
    );
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const say = (text: string) => process.stderr.write(`test:loaded: ${text}\n`);
say(
  `${hogs.length} CPU hogs on ${availableParallelism()} cores (pids ${hogs.map((h) => h.pid).join(', ')})`,
);
let failed = 0;
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  say(`run ${run}/${runs}: vitest run ${passThrough.join(' ')}`);
  const code = await runSuite();
  say(
    `run ${run}/${runs}: ${code === 0 ? 'passed' : `failed (exit ${code})`} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  if (code !== 0) {
    failed = code;
    break;
  }
}
stopHogs();
process.exit(failed);
