/**
 * `npm run bench:cold`: what a fresh function instance costs, for the deployed artifact
 * (dist/deploy: one bundle, warm-up before it listens) against the archive as it was built before
 * (the root package.json and lock, the compiled modules of dist/functions, dist/shared and
 * dist/console-app, no warm-up), and the same artifact without the compile cache its build step
 * writes, in the same run and interleaved so that all three see the same load.
 *
 * Each variant is installed as Cloud Build installs it (`npm ci --omit=dev`, from the npm cache
 * where it can, then the artifact's `gcp-build`) into a directory of its own and run with its own
 * functions framework, against the emulators (started here, or those named by
 * BIGTABLE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST).
 * Per run, target and variant:
 *
 * - spawn → first answer: from spawning node until the first full answer, a GET of an existing
 *   operation (`operations`: one ReadRows) or a push of a worker event (`subscriber`: a
 *   CheckAndMutateRow, a publish), the request re-sent every 5 ms while the port refuses; each
 *   round and variant on an operation of its own, created just before;
 * - first request: that answered request's own time; warm: the median of the next 20;
 * - idle RSS: the lowest of three samples half a second apart after the 21 requests.
 *
 * And once: the install size of each variant (bytes and files of the installed directory).
 * COLD_RUNS runs (default 5); prints the medians and ratios (artifact / before) as one JSON line
 * and a Markdown table on stderr. The load average is printed with them: compare ratios, not
 * absolute figures, on a busy machine.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { installArtifact, treeSize } from '../scripts/build-deploy.js';
import { ROOT } from '../scripts/run-function.js';
import { answerHelp } from '../scripts/usage.js';
import { freePort, startEmulators } from '../shared/local/emulators.js';
import { eventAttributes, type WorkerEvent } from '../shared/sdk/events.js';
import { Messaging } from '../shared/sdk/messaging.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../shared/service/store/bigtable/operation-store.js';
import { httpJson, keepAliveAgent } from './http.js';
import { round, rssMiB } from './stats.js';

answerHelp(`Usage: npm run bench:cold
  Compares the cold start of the deployed bundle (dist/deploy; also without its compile cache)
  with the plain compiled archive in the same run: spawn to first answer, first request, idle
  memory, installed size. COLD_RUNS=N rounds (default 5).`);

const RUNS = Number(process.env.COLD_RUNS ?? '5');
const WARM_REQUESTS = 20;
const say = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

type Variant = 'before' | 'artifact' | 'uncached';
type Target = 'operations' | 'subscriber';

/** The archive as it was: the root manifest and lock and the compiled modules. */
async function installBefore(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const file of ['package.json', 'package-lock.json'])
    cpSync(join(ROOT, file), join(dir, file));
  for (const sub of ['functions', 'shared', 'console-app']) {
    cpSync(join(ROOT, 'dist', sub), join(dir, 'dist', sub), {
      recursive: true,
      filter: (src) => !src.endsWith('.map'),
    });
  }
  await promisify(execFile)(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: dir, env: { ...process.env, NODE_ENV: 'production' }, maxBuffer: 16 * 1024 * 1024 },
  );
}

interface Sample {
  /** The instance's own warm-up log (artifact only): how long, and how it ended. */
  warmUp?: { ms: number; outcome: string };
  spawnToAnswerMs: number;
  firstRequestMs: number;
  warmRequestMs: number;
  idleRssMiB: number;
}

/**
 * A request to the function about operation `name`: resolves with its status, or rejects while
 * nothing listens.
 */
type Probe = (url: string, name: string) => Promise<number>;

async function measure(
  dir: string,
  target: Target,
  env: Record<string, string>,
  probe: Probe,
  name: string,
): Promise<Sample> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const framework = resolve(
    dir,
    'node_modules/@google-cloud/functions-framework/build/src/main.js',
  );
  const spawned = performance.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [framework, `--target=${target}`, `--source=${dir}`, `--port=${port}`],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'production',
        ...env,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    let firstRequestMs = 0;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${target} exited:\n${output}`);
      if (performance.now() - spawned > 60_000)
        throw new Error(`${target} did not answer:\n${output}`);
      const sent = performance.now();
      try {
        const status = await probe(url, name);
        if (status >= 300) throw new Error(`${target} answered ${status}:\n${output}`);
        firstRequestMs = performance.now() - sent;
        break;
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' &&
          !String(err).includes('ECONNREFUSED')
        )
          throw err;
        await sleep(5);
      }
    }
    const spawnToAnswerMs = performance.now() - spawned;
    const warm: number[] = [];
    for (let i = 0; i < WARM_REQUESTS; i++) {
      const sent = performance.now();
      await probe(url, name);
      warm.push(performance.now() - sent);
    }
    let idle = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      await sleep(500);
      idle = Math.min(idle, rssMiB(child.pid as number));
    }
    const warmed = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { message?: string; ms?: number; outcome?: string })
      .find((line) => line.message?.includes('warm-up') || line.message === 'instance warmed up');
    return {
      ...(warmed ? { warmUp: { ms: warmed.ms ?? 0, outcome: warmed.outcome ?? '' } } : {}),
      spawnToAnswerMs,
      firstRequestMs,
      warmRequestMs: median(warm),
      idleRssMiB: idle,
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'lro-cold-'));
  const dirs: Record<Variant, string> = {
    before: join(work, 'before'),
    artifact: join(work, 'artifact'),
    uncached: join(work, 'uncached'),
  };
  say("installing both archives (npm ci --omit=dev, and the artifact's gcp-build)…");
  await Promise.all([installBefore(dirs.before), installArtifact(dirs.artifact)]);
  // The same artifact without the compile cache its build step wrote: what the cache saves.
  cpSync(dirs.artifact, dirs.uncached, { recursive: true });
  rmSync(join(dirs.uncached, '.compile-cache'), { recursive: true, force: true });
  const sizes = {
    before: treeSize(dirs.before),
    artifact: treeSize(dirs.artifact),
  };
  const emulators = await startEmulators({});
  const suffix = Date.now().toString(36);
  const env: Record<string, string> = {
    GOOGLE_CLOUD_PROJECT: 'lro-local',
    LRO_BIGTABLE_TABLE: `cold-${suffix}`,
    LRO_EVENTS_TOPIC: `cold-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `cold-notifications-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `cold-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: emulators.bigtable,
    PUBSUB_EMULATOR_HOST: emulators.pubsub,
  };
  const config = loadConfig(env);
  const messaging = new Messaging(config);
  const store = createStore(config);
  const agent = keepAliveAgent();
  try {
    await ensureTable(config);
    await messaging.ensureTopic(config.topics.notifications);
    let percent = 0;
    const probes: Record<Target, Probe> = {
      operations: async (url, name) => (await httpJson(agent, 'GET', `${url}/v1/${name}`)).status,
      subscriber: async (url, name) => {
        const event = {
          version: 1,
          operation: name,
          eventId: randomUUID(),
          emitTime: new Date().toISOString(),
          type: 'metadata',
          metadata: { '@type': 'type.googleapis.com/bench.Progress', percent: ++percent },
        } as WorkerEvent;
        const body = {
          message: {
            data: Buffer.from(JSON.stringify(event)).toString('base64'),
            attributes: eventAttributes(event),
            messageId: randomUUID(),
            publishTime: new Date().toISOString(),
          },
          subscription: 'projects/lro-local/subscriptions/cold',
        };
        // To the path a push subscription uses (shared/local/provision.ts, pushEndpointOf).
        const path = `/projects/${env.GOOGLE_CLOUD_PROJECT}/topics/${env.LRO_EVENTS_TOPIC}`;
        return (await httpJson(agent, 'POST', `${url}${path}`, body)).status;
      },
    };
    const samples: Record<Target, Record<Variant, Sample[]>> = {
      operations: { before: [], artifact: [], uncached: [] },
      subscriber: { before: [], artifact: [], uncached: [] },
    };
    const loads: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order, so that no variant always meets the same moment.
      const order: Variant[] =
        run % 2 ? ['artifact', 'uncached', 'before'] : ['before', 'uncached', 'artifact'];
      for (const target of ['operations', 'subscriber'] as const) {
        for (const variant of order) {
          loads.push(loadavg()[0] as number);
          const runEnv = variant === 'before' ? { ...env, LRO_WARM_UP_TIMEOUT: '0s' } : env;
          // An operation of its own: events add cells to their operation's row, which would make
          // each round's writes and reads slower than the last.
          const { operation } = await store.create({});
          const sample = await measure(
            dirs[variant],
            target,
            runEnv,
            probes[target],
            operation.name,
          );
          samples[target][variant].push(sample);
          say(
            `run ${run + 1}/${RUNS} ${target} ${variant}: ${JSON.stringify(sample, (_k, v) => (typeof v === 'number' ? round(v) : v))}`,
          );
        }
      }
    }
    const figures: Record<string, unknown> = {};
    const rows: string[] = [
      '| function | figure | before | artifact | ratio | artifact without compile cache |',
      '| --- | --- | --- | --- | --- | --- |',
    ];
    for (const target of ['operations', 'subscriber'] as const) {
      const per: Record<string, unknown> = {};
      for (const key of [
        'spawnToAnswerMs',
        'firstRequestMs',
        'warmRequestMs',
        'idleRssMiB',
      ] as const) {
        const before = median(samples[target].before.map((s) => s[key]));
        const artifact = median(samples[target].artifact.map((s) => s[key]));
        const uncached = median(samples[target].uncached.map((s) => s[key]));
        // Ratio of the medians, and the median of the per-run ratios (each pair ran back to back).
        const pairRatios = samples[target].artifact.map(
          (s, i) => s[key] / (samples[target].before[i]?.[key] ?? Number.NaN),
        );
        per[key] = {
          before: round(before),
          artifact: round(artifact),
          ratio: round(artifact / before, 2),
          pairedRatio: round(median(pairRatios), 2),
          withoutCompileCache: round(uncached),
        };
        rows.push(
          `| ${target} | ${key} | ${round(before)} | ${round(artifact)} | ${round(artifact / before, 2)}× | ${round(uncached)} |`,
        );
      }
      figures[target] = per;
    }
    const mb = (b: number) => round(b / 1024 / 1024);
    rows.push(
      `| both | installed MB (files) | ${mb(sizes.before.bytes)} (${sizes.before.files}) | ${mb(sizes.artifact.bytes)} (${sizes.artifact.files}) | ${round(sizes.artifact.bytes / sizes.before.bytes, 2)}× | |`,
    );
    const result = {
      node: process.version,
      runs: RUNS,
      loadAverage1m: { median: round(median(loads), 2), max: round(Math.max(...loads), 2) },
      cores: (await import('node:os')).cpus().length,
      installedMB: { before: mb(sizes.before.bytes), artifact: mb(sizes.artifact.bytes) },
      installedFiles: { before: sizes.before.files, artifact: sizes.artifact.files },
      ...figures,
    };
    say(rows.join('\n'));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    agent.destroy();
    await deleteTable(config).catch(() => undefined);
    await messaging.deleteTopic(config.topics.notifications).catch(() => undefined);
    await Promise.allSettled([store.close(), messaging.close()]);
    await emulators.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
