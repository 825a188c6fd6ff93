/**
 * `npm run bench [-- --runs N] [-- --cpu-prof]`: what users care about, measured on this machine
 * against the emulators, each figure beside a baseline measured in the same run (absolute times on
 * shared machines are noise). Every measurement below runs N times (default 3) on one stack; the
 * printed figures and bench.json's top-level figures are the median of the runs, `spread` holds
 * [lowest, highest] of every figure, `runs` each run. `--cpu-prof` writes a CPU profile of both
 * functions for each measured phase to bench-results/probe/.
 *
 * 1. Floor: Pub/Sub publish→streaming pull and publish→push latency at the completion rate,
 *    push throughput to an endpoint that does nothing, Bigtable read and conditional-write latency.
 * 2. Wake-up latency: from a worker's succeed() accepted by Pub/Sub to the waiting caller's
 *    response, for our wait and two polling baselines over the same API: fixed 1 s polling (the
 *    Go reference) and exponential backoff from 100 ms ×1.3 (Google's client default); plus
 *    Bigtable reads per completed wait. Our wait is split into stages (bench/stages.ts), and the
 *    event-loop delay and GC pauses of the API, the subscriber and the benchmark itself are
 *    recorded over the same phase (bench/probe.ts, bench/loop.ts).
 * 3. Saturation: the same wait at 100 completions a second, with its stages, the push floor at
 *    that rate, and each process's CPU use.
 * 4. Event throughput end to end (publish → push → subscriber → Bigtable → notification) and the
 *    subscriber's CPU per event, beside the CPU of the same Bigtable write and notification publish
 *    made alone; the API's CPU per GET beside the store's CPU for the same read.
 * 5. API throughput (autocannon) for get and create against a bare HTTP server's (once).
 * 6. Memory of one API instance holding 1,000 and 5,000 waits (once).
 *
 * bench-results/bench.json (read by the capacity model; keep these keys stable):
 *   date, machine {cpus, node}, scale, runs (count) — the invocation
 *   floor {pubsubPullMs, pubsubPushMs, pushPerSecond, bigtableReadMs,
 *          bigtableConditionalWriteMs, completionFloorP50Ms}          — median of runs
 *   wake {"notification wait" | "fixed 1 s polling" | "backoff 100 ms x1.3":
 *         {latencyMs, readsPerWait, requestsPerWait, missed}}           — median of runs, 30/s
 *   stages {woken, stages {push, write, publish, pull, respond, return: Summary}} — 30/s
 *   loop {api, subscriber, bench: {delayMs {p50, p99, max, mean}, gc {count, totalMs, maxMs},
 *         cpuMs, elapsedMs}}                                            — over the 30/s wait
 *   saturation {completionsPerSecond, waits, latencyMs, stages, pushFloorMs, loop,
 *               cpuShare {api, subscriber} (cores busy)}                 — 100/s
 *   cpu {subscriberMsPerEvent, writeAndPublishAloneMsPerEvent, apiMsPerGet,
 *        storeReadAloneMsPerGet, apiMsPerWait, subscriberMsPerCompletion} — median of runs
 *   fresh {latencyMs, stages}   — the first 30/s wait of fresh functions, once, before the runs
 *   targets {name: {value, limit, met}}                                 — from the medians
 *   ratios, events, api {get, create, bareHttpBaseline}, memory         — as before
 *   spread (same shape as the medians, [lowest, highest]), runDetails (each run in full)
 * Summary = {count, p50, p95, p99, mean, max} in ms. BENCH_SCALE (default 1) scales the counts.
 */

import { execFile, spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { ROOT } from '../scripts/run-function.js';
import { type Stack, startStack } from '../scripts/stack.js';
import { answerHelp } from '../scripts/usage.js';
import { freePort } from '../shared/local/emulators.js';
import { Messaging } from '../shared/sdk/messaging.js';
import type { Operation } from '../shared/sdk/model.js';
import { publishNotification } from '../shared/sdk/notifications.js';
import { OperationReporter } from '../shared/sdk/reporter.js';
import { BigtableOperationStore } from '../shared/service/store/bigtable/operation-store.js';
import { wakeChart } from './chart.js';
import { httpJson, keepAliveAgent } from './http.js';
import { type LoopSnapshot, loopMonitor } from './loop.js';
import { medianOfRuns, spreadOfRuns } from './runs.js';
import {
  breakdown,
  roundSummary,
  STAGES,
  type StageBreakdown,
  type WakeTimestamps,
} from './stages.js';
import { cpuTimeMs, round, rssMiB, type Summary, summarize } from './stats.js';
import { measureSweeper } from './sweeper.js';

answerHelp(
  `Usage: npm run bench -- [--runs N] [--cpu-prof]
  Starts a local stack and measures wake-up latency (against polling baselines), event and API
  throughput and CPU, and memory; writes bench-results/bench.json and wake-latency.svg.
  --runs N      runs on one stack; figures are their median (default 3)
  --cpu-prof    also a CPU profile of each function per phase, in bench-results/probe/
  BENCH_SCALE=F scales the load (default 1).`,
  { takesArguments: true },
);

const scale = Number(process.env.BENCH_SCALE ?? '1') || 1;
const WAITS = Math.round(300 * scale);
const EVENT_OPS = Math.round(200 * scale);
const EVENTS_PER_OP = 10;
const COMPLETIONS_PER_SECOND = 30;
const SATURATION_PER_SECOND = 100;
const SATURATION_WAITS = Math.round(600 * scale);
const CPU_READS = Math.round(2_000 * scale);
const CPU_WRITES = Math.round(1_000 * scale);
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : (argv[i + 1] ?? '');
};
const RUNS = Math.max(1, Number(flag('--runs') ?? '3') || 3);
const CPU_PROFILE = argv.includes('--cpu-prof');
const RESULTS_DIR = resolve(ROOT, 'bench-results');
const PROBE_DIR = join(RESULTS_DIR, 'probe');
const benchLoop = loopMonitor();
const agent = keepAliveAgent();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const suffix = `${Date.now().toString(36)}`;
const RESPONSE = { '@type': 'type.googleapis.com/bench.Result', ok: true };

function say(line: string) {
  process.stderr.write(`${line}\n`);
}

async function createOperations(api: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () =>
        httpJson(agent, 'POST', `${api}/v1/operations`, {}),
      ),
    );
    for (const res of batch) {
      if (res.status !== 200)
        throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
      names.push((res.body as Operation).name);
    }
  }
  return names;
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// 1. Floor

/**
 * Latency from publish accepted to arrival, for 3 seconds of messages published at `rate` a
 * second (the rate the wake-up benchmark completes operations), as `seen` records arrivals by
 * message body.
 */
async function paced(
  messaging: Messaging,
  topic: string,
  tag: string,
  seen: Map<string, number>,
  rate = COMPLETIONS_PER_SECOND,
): Promise<number[]> {
  const accepted = new Map<string, number>();
  await Promise.all(
    Array.from({ length: rate * 3 }, async (_, i) => {
      await sleep((i * 1_000) / rate);
      await messaging.publish(topic, Buffer.from(`${tag}${i}`));
      accepted.set(`${tag}${i}`, performance.now());
    }),
  );
  const deadline = performance.now() + 10_000;
  while ([...accepted.keys()].some((k) => !seen.has(k)) && performance.now() < deadline) {
    await sleep(5);
  }
  const latencies: number[] = [];
  for (const [key, at] of accepted) {
    const arrived = seen.get(key);
    if (arrived !== undefined) latencies.push(Math.max(0, arrived - at));
  }
  return latencies;
}

async function measureFloor(stack: Stack, run: number) {
  const messaging = new Messaging(stack.config);
  const topic = `bench-floor-${suffix}-${run}`;
  await messaging.ensureTopic(topic);
  // publish → streaming pull
  const pullSub = `${topic}-pull`;
  await messaging.ensurePullSubscription(pullSub, topic);
  const pulled = new Map<string, number>();
  const listener = messaging.listen(pullSub, (m) => {
    pulled.set(m.data.toString(), performance.now());
    m.ack();
  });
  await sleep(500);
  const pullLatency = await paced(messaging, topic, 'p', pulled);
  await listener.close();
  await messaging.deleteSubscription(pullSub);

  // publish → push to an endpoint that does nothing
  const received = new Map<string, number>();
  let pushCount = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pushCount++;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { message: { data: string } };
        received.set(Buffer.from(body.message.data, 'base64').toString(), performance.now());
      } catch {
        // not ours
      }
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const pushSub = `${topic}-push`;
  await messaging.ensurePushSubscription(pushSub, topic, {
    pushEndpoint: `http://127.0.0.1:${port}/`,
  });
  await sleep(500);
  const pushLatency = await paced(messaging, topic, 'q', received);
  const pushLatencySaturation = await paced(messaging, topic, 's', received, SATURATION_PER_SECOND);
  const burst = EVENT_OPS * EVENTS_PER_OP;
  const before = pushCount;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: burst }, (_, i) => messaging.publish(topic, Buffer.from(`b${i}`))),
  );
  const deadline = started + 120_000;
  while (pushCount - before < burst && performance.now() < deadline) await sleep(5);
  const pushPerSecond = ((pushCount - before) / (performance.now() - started)) * 1000;
  await messaging.deleteSubscription(pushSub);
  await messaging.deleteTopic(topic);
  await new Promise<void>((r) => server.close(() => r()));
  await messaging.close();

  // Bigtable read and conditional write, through the store
  const store = new BigtableOperationStore(stack.config);
  const { operation } = await store.create();
  const reads: number[] = [];
  const writes: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t = performance.now();
    await store.get(operation.name);
    reads.push(performance.now() - t);
    t = performance.now();
    await store.updateMetadata(
      operation.name,
      { '@type': 'type.googleapis.com/bench.P', i },
      { emitTime: new Date(Date.now() + i), eventId: `e${i}` },
    );
    writes.push(performance.now() - t);
  }
  await store.close();
  return {
    pubsubPullMs: roundSummary(summarize(pullLatency)),
    pubsubPushMs: roundSummary(summarize(pushLatency)),
    pushPerSecond: round(pushPerSecond),
    bigtableReadMs: roundSummary(summarize(reads)),
    bigtableConditionalWriteMs: roundSummary(summarize(writes)),
    /** Push at the saturation benchmark's completion rate. */
    pubsubPushSaturationMs: roundSummary(summarize(pushLatencySaturation)),
    pushValues: pushLatency,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Wake-up latency

type Strategy = 'notification wait' | 'fixed 1 s polling' | 'backoff 100 ms x1.3';

interface WakeResult {
  latencyMs: Summary;
  values: number[];
  timestamps: WakeTimestamps[];
  /** Event loops over the waits (after the operations were created), when asked for. */
  loop?: PhaseLoop | undefined;
  readsPerWait: number;
  requestsPerWait: number;
  missed: number;
}

async function measureWake(
  stack: Stack,
  strategy: Strategy,
  rate = COMPLETIONS_PER_SECOND,
  waits = WAITS,
  observe = false,
): Promise<WakeResult> {
  const api = stack.api.url;
  const names = await createOperations(api, waits);
  const stopLoop = observe ? await startLoop(stack) : undefined;
  const messaging = new Messaging(stack.config);
  const doneAt = new Map<string, number>();
  const doneEpoch = new Map<string, number>();
  const timingHeader = new Map<string, string>();
  let requests = 0;
  let reads = 0;
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);

  const waitOne = async (name: string) => {
    const id = name.slice('operations/'.length);
    if (strategy === 'notification wait') {
      for (;;) {
        requests++;
        const res = await httpJson(
          agent,
          'POST',
          `${api}/v1/operations/${id}:wait`,
          { timeout: '60s' },
          controller.signal,
        );
        reads += Number(res.headers['x-lro-bigtable-reads'] ?? Number.NaN);
        const timing = res.headers['x-lro-wake-timing'];
        if (typeof timing === 'string') timingHeader.set(name, timing);
        if ((res.body as Operation).done) break;
      }
    } else {
      let delay = strategy === 'fixed 1 s polling' ? 1_000 : 100;
      for (;;) {
        requests++;
        reads++; // one GET is one Bigtable read
        const res = await httpJson(
          agent,
          'GET',
          `${api}/v1/operations/${id}`,
          undefined,
          controller.signal,
        );
        if ((res.body as Operation).done) break;
        await sleep(delay);
        if (strategy === 'backoff 100 ms x1.3') delay = Math.min(delay * 1.3, 60_000);
      }
    }
    doneAt.set(name, performance.now());
    doneEpoch.set(name, Date.now());
  };
  const waiting = Promise.all(names.map(waitOne));
  // Let every wait start, then complete the operations at random moments, at about 30 a second:
  // well below what the emulator's push delivers, so that the figure is the wait's, not a queue's.
  await sleep(1_000);
  const accepted = new Map<string, number>();
  const acceptedEpoch = new Map<string, number>();
  const windowMs = Math.max(2_000, (names.length / rate) * 1_000);
  const schedule = names.map((name) => ({ name, at: Math.random() * windowMs }));
  const t0 = performance.now();
  await Promise.all(
    schedule.map(async ({ name, at }) => {
      await sleep(Math.max(0, t0 + at - performance.now()));
      const reporter = new OperationReporter({
        messaging,
        operation: name,
        topics: { events: stack.config.topics.events, notifications: false },
      });
      await reporter.succeed(RESPONSE);
      accepted.set(name, performance.now());
      acceptedEpoch.set(name, Date.now());
      await reporter.close();
    }),
  );
  const timeout = setTimeout(() => controller.abort(), 90_000);
  await waiting.catch(() => undefined);
  clearTimeout(timeout);
  const loop = await stopLoop?.();
  await messaging.close();
  const values: number[] = [];
  const timestamps: WakeTimestamps[] = [];
  for (const name of names) {
    const a = accepted.get(name);
    const d = doneAt.get(name);
    if (a !== undefined && d !== undefined) values.push(Math.max(0, d - a));
    const ae = acceptedEpoch.get(name);
    const de = doneEpoch.get(name);
    if (ae !== undefined && de !== undefined) {
      timestamps.push({ acceptedAt: ae, doneAt: de, header: timingHeader.get(name) });
    }
  }
  return {
    latencyMs: roundSummary(summarize(values)),
    values,
    timestamps,
    loop,
    readsPerWait: round(reads / names.length, 2),
    requestsPerWait: round(requests / names.length, 2),
    missed: names.length - values.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Event throughput

async function measureEvents(stack: Stack, run: number) {
  const names = await createOperations(stack.api.url, EVENT_OPS);
  const messaging = new Messaging(stack.config);
  const watchSub = `bench-events-${suffix}-${run}`;
  await messaging.ensurePullSubscription(watchSub, stack.config.topics.notifications);
  const finished = new Set<string>();
  let notifications = 0;
  const listener = messaging.listen(watchSub, (m) => {
    notifications++;
    if (m.attributes.type === 'succeeded' && m.attributes.operation) {
      finished.add(m.attributes.operation);
    }
    m.ack();
  });
  await sleep(500);
  const pid = stack.subscriber.process.pid as number;
  const cpuBefore = cpuTimeMs(pid);
  const started = performance.now();
  await pool(names, 50, async (name) => {
    const reporter = new OperationReporter({
      messaging,
      operation: name,
      topics: { events: stack.config.topics.events, notifications: false },
    });
    for (let i = 1; i < EVENTS_PER_OP; i++) {
      await reporter.progress({ '@type': 'type.googleapis.com/bench.Progress', percent: i * 10 });
    }
    await reporter.succeed(RESPONSE);
    await reporter.close();
  });
  const published = performance.now();
  const deadline = started + 300_000;
  while (finished.size < names.length && performance.now() < deadline) await sleep(10);
  const elapsed = performance.now() - started;
  const cpu = cpuTimeMs(pid) - cpuBefore;
  await listener.close();
  await messaging.deleteSubscription(watchSub);
  await messaging.close();
  const events = names.length * EVENTS_PER_OP;
  return {
    events,
    operationsFinished: finished.size,
    publishSeconds: round((published - started) / 1000, 2),
    endToEndSeconds: round(elapsed / 1000, 2),
    eventsPerSecond: round((events / elapsed) * 1000),
    subscriberCpuMsPerEvent: round(cpu / events, 2),
    notificationsSeen: notifications,
  };
}

// ---------------------------------------------------------------------------------------------
// Event-loop delay, GC and CPU of the functions over a phase (bench/probe.ts)

interface PhaseLoop {
  api: LoopSnapshot | undefined;
  subscriber: LoopSnapshot | undefined;
  bench: LoopSnapshot;
}

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
async function startLoop(stack: Stack): Promise<() => Promise<PhaseLoop>> {
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
async function withLoop<T>(stack: Stack, fn: () => Promise<T>): Promise<[T, PhaseLoop]> {
  const stop = await startLoop(stack);
  const result = await fn();
  return [result, await stop()];
}

// ---------------------------------------------------------------------------------------------
// CPU per event, per GET and per wait, beside the same work done by the clients alone

/** CPU (ms) this process spends on `fn`. */
async function ownCpuMs(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

async function measureCpu(stack: Stack) {
  // The subscriber's own Bigtable write and notification publish, made here alone: nine
  // progress writes and one completion per operation, as the event benchmark sends them, with a
  // few in flight as push delivers them.
  const store = new BigtableOperationStore(stack.config);
  const messaging = new Messaging(stack.config);
  const topic = stack.config.topics.notifications;
  const ops = Math.max(1, Math.round(CPU_WRITES / EVENTS_PER_OP));
  const created = await Promise.all(Array.from({ length: ops }, () => store.create()));
  const work: Array<() => Promise<void>> = [];
  for (const { operation } of created) {
    for (let i = 1; i < EVENTS_PER_OP; i++) {
      work.push(async () => {
        const metadata = { '@type': 'type.googleapis.com/bench.Progress', percent: i * 10 };
        const written = await store.updateMetadata(operation.name, metadata, {
          emitTime: new Date(Date.now() + i),
          eventId: `cpu-${i}`,
        });
        await publishNotification(messaging, topic, {
          type: 'metadata',
          operation: written.operation,
          timing: { receivedAt: Date.now(), writtenAt: Date.now() },
        });
      });
    }
    work.push(async () => {
      const written = await store.complete(operation.name, { response: RESPONSE }, {});
      await publishNotification(messaging, topic, {
        type: 'succeeded',
        operation: written.operation,
        timing: { receivedAt: Date.now(), writtenAt: Date.now() },
      });
    });
  }
  // Warm the clients' connections first.
  await (work.shift() as () => Promise<void>)();
  const writeCpu = await ownCpuMs(() => pool(work, 4, (w) => w()));
  const writeAndPublishAloneMsPerEvent = writeCpu / work.length;

  // GET through the API against the same read made with the store alone, 16 callers each.
  const [name] = await createOperations(stack.api.url, 1);
  const id = (name as string).slice('operations/'.length);
  const gets = Array.from({ length: CPU_READS }, (_, i) => i);
  const apiPid = stack.api.process.pid as number;
  await pool(gets.slice(0, 200), 16, async () => {
    await httpJson(agent, 'GET', `${stack.api.url}/v1/operations/${id}`);
  });
  const [, getLoop] = await withLoop(stack, () =>
    pool(gets, 16, async () => {
      const res = await httpJson(agent, 'GET', `${stack.api.url}/v1/operations/${id}`);
      if (res.status !== 200) throw new Error(`GET answered ${res.status}`);
    }),
  );
  const apiCpu = getLoop.api?.cpuMs ?? cpuTimeMs(apiPid);
  await pool(gets.slice(0, 200), 16, async () => {
    await store.get(name as string);
  });
  const readCpu = await ownCpuMs(() =>
    pool(gets, 16, async () => {
      await store.get(name as string);
    }),
  );
  await store.close();
  await messaging.close();
  // What the API spends on a request that reads nothing (the framework and the handler: a 404
  // for a path that is not routed), and the same read as above inside a domain, as the
  // functions framework runs every request.
  const [, unroutedLoop] = await withLoop(stack, () =>
    pool(gets, 16, async () => {
      await httpJson(agent, 'GET', `${stack.api.url}/v1/not-routed`);
    }),
  );
  const { NODE_OPTIONS: _probe, ...childEnv } = stack.env;
  const domainCost = await new Promise<{ plainMsPerRead: number; inDomainMsPerRead: number }>(
    (resolveCost, reject) => {
      execFile(
        process.execPath,
        [resolve(ROOT, 'dist/bench/domain-cost.js'), name as string, String(gets.length)],
        { env: { PATH: process.env.PATH ?? '', ...childEnv } },
        (err, stdout) => (err ? reject(err) : resolveCost(JSON.parse(stdout))),
      );
    },
  );
  const frameworkFloor = await frameworkCpuPerRequest(gets.length);
  return {
    writeAndPublishAloneMsPerEvent: round(writeAndPublishAloneMsPerEvent, 3),
    frameworkMsPerRequest: round(frameworkFloor, 3),
    apiMsPerGet: round(apiCpu / gets.length, 3),
    storeReadAloneMsPerGet: round(readCpu / gets.length, 3),
    apiMsPerUnroutedRequest: round((unroutedLoop.api?.cpuMs ?? Number.NaN) / gets.length, 3),
    storeReadInChildMsPerGet: round(domainCost.plainMsPerRead, 3),
    storeReadInDomainMsPerGet: round(domainCost.inDomainMsPerRead, 3),
    getLoop,
  };
}

/** CPU per request of the functions framework serving a function that does nothing. */
async function frameworkCpuPerRequest(count: number): Promise<number> {
  const child = spawn(process.execPath, [resolve(ROOT, 'dist/bench/framework-floor.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolvePort(Number(chunk.toString().trim())));
      child.once('exit', () => reject(new Error('the framework floor exited')));
    });
    const url = `http://127.0.0.1:${port}`;
    const cpu = async () =>
      ((await httpJson(agent, 'GET', `${url}/cpu`)).body as { cpuMs: number }).cpuMs;
    const requests = Array.from({ length: count }, (_, i) => i);
    await pool(requests.slice(0, 200), 16, async () => {
      await httpJson(agent, 'GET', `${url}/`);
    });
    const before = await cpu();
    await pool(requests, 16, async () => {
      await httpJson(agent, 'GET', `${url}/`);
    });
    return ((await cpu()) - before) / count;
  } finally {
    child.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. API throughput

async function cannon(options: autocannon.Options) {
  const result = await autocannon({ connections: 32, duration: 5, ...options });
  return {
    requestsPerSecond: round(result.requests.average),
    latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

async function measureApi(stack: Stack) {
  const [name] = await createOperations(stack.api.url, 1);
  const id = (name as string).slice('operations/'.length);
  const get = await cannon({ url: `${stack.api.url}/v1/operations/${id}` });
  const create = await cannon({
    url: `${stack.api.url}/v1/operations`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  const body = JSON.stringify({ name, done: false });
  const bare = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  const port = await freePort();
  await new Promise<void>((r) => bare.listen(port, '127.0.0.1', r));
  const baseline = await cannon({ url: `http://127.0.0.1:${port}/` });
  await new Promise<void>((r) => bare.close(() => r()));
  return { get, create, bareHttpBaseline: baseline };
}

// ---------------------------------------------------------------------------------------------
// 5. Memory of concurrent waits

async function measureWaitMemory(stack: Stack) {
  const pid = stack.api.process.pid as number;
  const out: Record<string, number> = { idleMiB: round(rssMiB(pid)) };
  const names = await createOperations(stack.api.url, 5_000);
  for (const count of [1_000, 5_000]) {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const pending = names
      .slice(0, count)
      .map((name) =>
        httpJson(
          agent,
          'POST',
          `${stack.api.url}/v1/operations/${name.slice(11)}:wait`,
          { timeout: '120s' },
          controller.signal,
        ).catch(() => undefined),
      );
    // Every wait has made its one read once the process settles.
    await sleep(Math.max(3_000, count));
    out[`with${count}WaitsMiB`] = round(rssMiB(pid));
    controller.abort();
    await Promise.all(pending);
    await sleep(1_000);
  }
  out.perWaitKiB = round(
    (((out.with5000WaitsMiB as number) - (out.idleMiB as number)) * 1024) / 5_000,
    2,
  );
  return out;
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The printed report

type Spread = [number, number] | [];

/** A figure with the runs' spread, e.g. `112 (98–131)`. */
function withSpread(value: number, spread: unknown): string {
  const s = spread as Spread;
  if (RUNS < 2 || s.length !== 2) return `${round(value)}`;
  return `${round(value)} (${round(s[0])}–${round(s[1])})`;
}

function dig(root: unknown, path: string[]): unknown {
  let node = root;
  for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

function report(
  results: { spread: unknown },
  m: RunFigures,
  targets: ReturnType<typeof targetsOf>,
  api: Awaited<ReturnType<typeof measureApi>>,
  memory: Record<string, number>,
  fresh: { latencyMs: Summary; stages: StageBreakdown },
): string {
  const sp = (...path: string[]) => dig(results.spread, path);
  const pct = (path: string[], summary: Summary) =>
    (['p50', 'p95', 'p99'] as const).map((p) => withSpread(summary[p], sp(...path, p))).join(' | ');
  const ours = m.wake['notification wait'] as WakeResult;
  const fixed = m.wake['fixed 1 s polling'] as WakeResult;
  const backoff = m.wake['backoff 100 ms x1.3'] as WakeResult;
  const row = (label: string, key: string, r: WakeResult) =>
    `| ${label} | ${pct(['wake', key, 'latencyMs'], r.latencyMs)} | ${r.readsPerWait} | ${r.missed} |`;
  const stageRows = (path: string[], b: StageBreakdown) =>
    STAGES.map((st) => `| ${st.label} | ${pct([...path, 'stages', st.key], b.stages[st.key])} |`);
  const loopRow = (label: string, l: LoopSnapshot | undefined) =>
    l
      ? `| ${label} | ${l.delayMs.p50} | ${l.delayMs.p99} | ${l.delayMs.max} | ${l.gc.count} (${l.gc.major} major) | ${l.gc.maxMs} | ${round(l.gc.totalMs)} | ${round(l.cpuMs / l.elapsedMs, 2)} |`
      : `| ${label} | n/a | | | | | | |`;
  const t = targets;
  const tRow = (
    label: string,
    x: { value: number; limit: number; met: boolean; baseline: string },
  ) => `| ${label} | ${x.value} | ≤ ${x.limit} | ${x.met ? 'met' : 'NOT met'} | ${x.baseline} |`;
  const runs = RUNS > 1 ? `median of ${RUNS} runs (lowest–highest run)` : 'one run';
  return [
    '',
    `Figures: ${runs}.`,
    '',
    `| wake-up strategy (${WAITS} concurrent waits, ${COMPLETIONS_PER_SECOND}/s) | p50 ms | p95 ms | p99 ms | Bigtable reads / wait | missed |`,
    '|---|---|---|---|---|---|',
    row('notification wait (ours)', 'notification wait', ours),
    row('backoff 100 ms ×1.3', 'backoff 100 ms x1.3', backoff),
    row('fixed 1 s polling (Go reference)', 'fixed 1 s polling', fixed),
    '',
    `| stage of the notification wait (${m.stages.woken} of ${WAITS} woken by a notification) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...stageRows(['stages'], m.stages),
    `| **wake-up, end to end** | ${pct(['wake', 'notification wait', 'latencyMs'], ours.latencyMs)} |`,
    `| events in the subscriber when a push arrived (p50 / max) | ${m.stages.subscriberInFlight.p50} / ${m.stages.subscriberInFlight.max} | | |`,
    `| floor, same run: publish → push to a no-op endpoint | ${pct(['floor', 'pubsubPushMs'], m.floor.pubsubPushMs)} |`,
    `| floor, same run: Bigtable conditional write | ${pct(['floor', 'bigtableConditionalWriteMs'], m.floor.bigtableConditionalWriteMs)} |`,
    `| floor, same run: publish → streaming pull | ${pct(['floor', 'pubsubPullMs'], m.floor.pubsubPullMs)} |`,
    '',
    `| fresh functions: their first ${WAITS} completions (once, before the runs) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...STAGES.map((st) => {
      const x = fresh.stages.stages[st.key];
      return `| ${st.label} | ${round(x.p50)} | ${round(x.p95)} | ${round(x.p99)} |`;
    }),
    `| **wake-up, end to end** | ${round(fresh.latencyMs.p50)} | ${round(fresh.latencyMs.p95)} | ${round(fresh.latencyMs.p99)} |`,
    '',
    `| saturation: ${SATURATION_PER_SECOND} completions/s, ${SATURATION_WAITS} waits (${m.saturation.stages.woken} woken by a notification) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...stageRows(['saturation', 'stages'], m.saturation.stages),
    `| **wake-up, end to end** | ${pct(['saturation', 'latencyMs'], m.saturation.latencyMs)} |`,
    `| events in the subscriber when a push arrived (p50 / max) | ${m.saturation.stages.subscriberInFlight.p50} / ${m.saturation.stages.subscriberInFlight.max} | | |`,
    `| floor, same run: publish → push at ${SATURATION_PER_SECOND}/s | ${pct(['saturation', 'pushFloorMs'], m.saturation.pushFloorMs)} |`,
    '',
    '| event loop over the phase | delay p50 ms | p99 ms | max ms | GCs | longest GC ms | GC total ms | cores busy |',
    '|---|---|---|---|---|---|---|---|',
    loopRow(`API, ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.api),
    loopRow(`subscriber, ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.subscriber),
    loopRow(`benchmark (the callers), ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.bench),
    loopRow(`API, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.api),
    loopRow(`subscriber, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.subscriber),
    loopRow(`benchmark, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.bench),
    loopRow('API, 16 callers of GET', m.cpu.getLoop.api),
    '',
    '| CPU | ms | baseline in the same run | ms |',
    '|---|---|---|---|',
    `| subscriber, per event | ${withSpread(m.cpu.subscriberMsPerEvent, sp('cpu', 'subscriberMsPerEvent'))} | its Bigtable write + notification publish made alone | ${withSpread(m.cpu.writeAndPublishAloneMsPerEvent, sp('cpu', 'writeAndPublishAloneMsPerEvent'))} |`,
    `| API, per GET (16 callers, ${CPU_READS} GETs) | ${withSpread(m.cpu.apiMsPerGet, sp('cpu', 'apiMsPerGet'))} | the same read with the store alone | ${withSpread(m.cpu.storeReadAloneMsPerGet, sp('cpu', 'storeReadAloneMsPerGet'))} |`,
    `| API, per request that reads nothing (a 404 for an unrouted path) | ${withSpread(m.cpu.apiMsPerUnroutedRequest, sp('cpu', 'apiMsPerUnroutedRequest'))} | | |`,
    `| the functions framework alone, per request (a function that only answers) | ${withSpread(m.cpu.frameworkMsPerRequest, sp('cpu', 'frameworkMsPerRequest'))} | | |`,
    `| the store read inside a domain, as the functions framework runs each request | ${withSpread(m.cpu.storeReadInDomainMsPerGet, sp('cpu', 'storeReadInDomainMsPerGet'))} | the same read in the same child process without | ${withSpread(m.cpu.storeReadInChildMsPerGet, sp('cpu', 'storeReadInChildMsPerGet'))} |`,
    `| API, per wait (request, read, notification) | ${withSpread(m.cpu.apiMsPerWait, sp('cpu', 'apiMsPerWait'))} | | |`,
    `| subscriber, per completion in the wait | ${withSpread(m.cpu.subscriberMsPerCompletion, sp('cpu', 'subscriberMsPerCompletion'))} | | |`,
    '',
    '| target (medians) | value | limit | | baseline |',
    '|---|---|---|---|---|',
    tRow('wake-up p99 / p50', t.wakeP99OverP50),
    `| the push floor's own p99 / p50, same run | ${round(m.floor.pubsubPushMs.p99 / m.floor.pubsubPushMs.p50, 2)} | | | publish → push to a no-op endpoint |`,
    tRow('wake-up p50 / floor p50', t.wakeP50OverFloorP50),
    tRow('subscriber CPU per event / alone', t.subscriberCpuOverAlone),
    tRow('API CPU per GET / store read alone', t.apiGetCpuOverStoreRead),
    '',
    '| figure | value | baseline in the same run | ratio |',
    '|---|---|---|---|',
    `| polling p50 / ours | ${round(fixed.latencyMs.p50)} / ${round(backoff.latencyMs.p50)} ms | ours ${round(ours.latencyMs.p50)} ms | ${round(fixed.latencyMs.p50 / ours.latencyMs.p50, 2)}× / ${round(backoff.latencyMs.p50 / ours.latencyMs.p50, 2)}× slower |`,
    `| event throughput | ${withSpread(m.events.eventsPerSecond, sp('events', 'eventsPerSecond'))} events/s | push to a no-op endpoint ${withSpread(m.floor.pushPerSecond, sp('floor', 'pushPerSecond'))} msg/s | ${round(m.events.eventsPerSecond / m.floor.pushPerSecond, 2)} |`,
    `| GET operation | ${api.get.requestsPerSecond} req/s, p50 ${api.get.latencyMs.p50} ms, p99 ${api.get.latencyMs.p99} ms | bare HTTP ${api.bareHttpBaseline.requestsPerSecond} req/s | ${round(api.get.requestsPerSecond / api.bareHttpBaseline.requestsPerSecond, 3)} |`,
    `| create operation | ${api.create.requestsPerSecond} req/s, p50 ${api.create.latencyMs.p50} ms, p99 ${api.create.latencyMs.p99} ms | | |`,
    `| API memory | idle ${memory.idleMiB} MiB, 1,000 waits ${memory.with1000WaitsMiB} MiB, 5,000 waits ${memory.with5000WaitsMiB} MiB | | ${memory.perWaitKiB} KiB per wait |`,
    '',
    'Results: bench-results/bench.json, chart: bench-results/wake-latency.svg',
  ].join('\n');
}

/** One run of every repeated measurement, on the given stack. */
async function measureRun(stack: Stack, run: number) {
  say(`run ${run}/${RUNS}: floor, Pub/Sub and Bigtable on their own…`);
  const { pushValues, ...floor } = await measureFloor(stack, run);
  const wake: Record<string, WakeResult> = {};
  for (const strategy of [
    'notification wait',
    'fixed 1 s polling',
    'backoff 100 ms x1.3',
  ] as Strategy[]) {
    say(`run ${run}/${RUNS}: wake-up latency: ${strategy}, ${WAITS} concurrent waits…`);
    wake[strategy] = await measureWake(
      stack,
      strategy,
      COMPLETIONS_PER_SECOND,
      WAITS,
      strategy === 'notification wait',
    );
  }
  say(`run ${run}/${RUNS}: saturation: ${SATURATION_PER_SECOND} completions a second…`);
  const saturated = await measureWake(
    stack,
    'notification wait',
    SATURATION_PER_SECOND,
    SATURATION_WAITS,
    true,
  );
  const saturationLoop = saturated.loop as PhaseLoop;
  say(`run ${run}/${RUNS}: event throughput: ${EVENT_OPS * EVENTS_PER_OP} events…`);
  const events = await measureEvents(stack, run);
  say(`run ${run}/${RUNS}: CPU per event and per GET beside the clients alone…`);
  const { getLoop, ...cpuAlone } = await measureCpu(stack);
  const ours = wake['notification wait'] as WakeResult;
  const loop = ours.loop as PhaseLoop;
  const cpuShare = (l: LoopSnapshot | undefined) =>
    l ? round(l.cpuMs / l.elapsedMs, 2) : Number.NaN;
  const figures = {
    floor: {
      ...floor,
      completionFloorP50Ms: round(
        floor.pubsubPushMs.p50 + floor.bigtableConditionalWriteMs.p50 + floor.pubsubPullMs.p50,
      ),
    },
    wake: Object.fromEntries(
      Object.entries(wake).map(([k, v]) => [
        k,
        {
          latencyMs: v.latencyMs,
          readsPerWait: v.readsPerWait,
          requestsPerWait: v.requestsPerWait,
          missed: v.missed,
        },
      ]),
    ),
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
      writeAndPublishAloneMsPerEvent: cpuAlone.writeAndPublishAloneMsPerEvent,
      apiMsPerGet: cpuAlone.apiMsPerGet,
      storeReadAloneMsPerGet: cpuAlone.storeReadAloneMsPerGet,
      apiMsPerUnroutedRequest: cpuAlone.apiMsPerUnroutedRequest,
      frameworkMsPerRequest: cpuAlone.frameworkMsPerRequest,
      storeReadInChildMsPerGet: cpuAlone.storeReadInChildMsPerGet,
      storeReadInDomainMsPerGet: cpuAlone.storeReadInDomainMsPerGet,
      apiMsPerWait: round((loop.api?.cpuMs ?? Number.NaN) / WAITS, 3),
      subscriberMsPerCompletion: round((loop.subscriber?.cpuMs ?? Number.NaN) / WAITS, 3),
      getLoop,
    },
    events,
  };
  const charted = {
    ours: ours.values,
    fixed: (wake['fixed 1 s polling'] as WakeResult).values,
    backoff: (wake['backoff 100 ms x1.3'] as WakeResult).values,
    push: pushValues,
  };
  return { figures, charted };
}

type RunFigures = Awaited<ReturnType<typeof measureRun>>['figures'];

function targetsOf(m: RunFigures) {
  const ours = m.wake['notification wait'] as WakeResult;
  const target = (value: number, limit: number, baseline: string) => ({
    value: round(value, 2),
    limit,
    met: value <= limit,
    baseline,
  });
  return {
    wakeP99OverP50: target(ours.latencyMs.p99 / ours.latencyMs.p50, 2, 'wake-up p50'),
    wakeP50OverFloorP50: target(
      ours.latencyMs.p50 / m.floor.completionFloorP50Ms,
      1.3,
      'floor p50 (push + conditional write + streaming pull)',
    ),
    subscriberCpuOverAlone: target(
      m.cpu.subscriberMsPerEvent / m.cpu.writeAndPublishAloneMsPerEvent,
      2,
      'the same Bigtable write and notification publish made alone',
    ),
    apiGetCpuOverStoreRead: target(
      m.cpu.apiMsPerGet / m.cpu.storeReadAloneMsPerGet,
      1.3,
      'the same read made with the store (Bigtable client) alone',
    ),
  };
}

async function main() {
  const env: Record<string, string | undefined> = {
    LRO_BIGTABLE_TABLE: `bench-${suffix}`,
    LRO_EVENTS_TOPIC: `bench-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `bench-notifications-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `bench-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: process.env.BIGTABLE_EMULATOR_HOST,
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
    // Event-loop delay and GC of the functions (bench/probe.ts); CPU profiles on request.
    BENCH_PROBE_DIR: PROBE_DIR,
    NODE_OPTIONS: `--import ${resolve(ROOT, 'dist/bench/probe.js')}`,
    ...(CPU_PROFILE ? { BENCH_CPU_PROFILE: '1' } : {}),
  };
  mkdirSync(PROBE_DIR, { recursive: true });
  say(`starting the local stack… (${RUNS} runs)`);
  const stack = await startStack({
    env,
    apiPort: await freePort(),
    subscriberPort: await freePort(),
  });
  try {
    // Fresh functions: their first events and waits load modules, open connections and run code
    // the JIT has not compiled yet. Measured once, as its own figure (what a new instance's first
    // callers see); the runs below start once both functions have served that many.
    say(`fresh functions: their first ${WAITS} completions and waits…`);
    const fresh = await measureWake(stack, 'notification wait', COMPLETIONS_PER_SECOND, WAITS);
    const freshFigures = { latencyMs: fresh.latencyMs, stages: breakdown(fresh.timestamps) };
    const runs: Array<Awaited<ReturnType<typeof measureRun>>> = [];
    for (let run = 1; run <= RUNS; run++) runs.push(await measureRun(stack, run));
    say('API throughput…');
    const api = await measureApi(stack);
    say('memory of concurrent waits…');
    const memory = await measureWaitMemory(stack);
    const sweeper = await measureSweeper(stack.config, say);
    const m = medianOfRuns(runs.map((r) => r.figures));
    const ours = m.wake['notification wait'] as WakeResult;
    const fixed = m.wake['fixed 1 s polling'] as WakeResult;
    const backoff = m.wake['backoff 100 ms x1.3'] as WakeResult;
    const floorMs = m.floor.completionFloorP50Ms;
    const targets = targetsOf(m);
    const results = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      scale,
      runs: RUNS,
      ...m,
      fresh: freshFigures,
      targets,
      ratios: {
        fixedPollingP50OverOurs: round(fixed.latencyMs.p50 / ours.latencyMs.p50, 2),
        backoffP50OverOurs: round(backoff.latencyMs.p50 / ours.latencyMs.p50, 2),
        fixedPollingReadsOverOurs: round(fixed.readsPerWait / ours.readsPerWait, 2),
        backoffReadsOverOurs: round(backoff.readsPerWait / ours.readsPerWait, 2),
        oursP50OverFloor: round(ours.latencyMs.p50 / floorMs, 2),
        eventThroughputOverPushFloor: round(m.events.eventsPerSecond / m.floor.pushPerSecond, 2),
        getOverBareHttp: round(
          api.get.requestsPerSecond / api.bareHttpBaseline.requestsPerSecond,
          3,
        ),
      },
      api,
      memory,
      sweeper,
      spread: spreadOfRuns(runs.map((r) => r.figures)),
      runDetails: runs.map((r) => ({ ...r.figures, targets: targetsOf(r.figures) })),
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(resolve(RESULTS_DIR, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
    // The chart shows the run whose notification-wait p99 is the median one.
    const byP99 = [...runs].sort(
      (a, b) =>
        (a.figures.wake['notification wait'] as WakeResult).latencyMs.p99 -
        (b.figures.wake['notification wait'] as WakeResult).latencyMs.p99,
    );
    const shown = byP99[Math.floor((byP99.length - 1) / 2)] as (typeof runs)[number];
    writeFileSync(
      resolve(RESULTS_DIR, 'wake-latency.svg'),
      wakeChart(
        `Wake-up latency, ${WAITS} concurrent waits, ${COMPLETIONS_PER_SECOND} completions/s (emulators, one machine; run ${runs.indexOf(shown) + 1} of ${RUNS}, the median p99)`,
        [
          { label: 'notification wait', values: shown.charted.ours, colour: '#1a73e8' },
          { label: 'backoff 100 ms ×1.3', values: shown.charted.backoff, colour: '#e8710a' },
          { label: 'fixed 1 s polling', values: shown.charted.fixed, colour: '#d93025' },
          { label: 'floor: Pub/Sub push alone', values: shown.charted.push, colour: '#5f6368' },
        ],
        shown.figures.stages,
        Object.fromEntries(STAGES.map((st) => [st.key, st.label])),
      ),
    );
    process.stdout.write(`${report(results, m, targets, api, memory, freshFigures)}\n`);
  } catch (err) {
    say(`API output (last lines):\n${stack.api.output().slice(-3_000)}`);
    throw err;
  } finally {
    agent.destroy();
    benchLoop.stop();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
