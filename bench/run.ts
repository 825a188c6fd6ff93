/**
 * `npm run bench`: what users care about, measured on this machine against the emulators, each
 * figure beside a baseline measured in the same run (absolute times on shared machines are noise).
 *
 * 1. Floor: Pub/Sub publish→streaming pull and publish→push latency, push throughput to an
 *    endpoint that does nothing, Bigtable read and conditional-write latency.
 * 2. Wake-up latency: from a worker's succeed() accepted by Pub/Sub to the waiting caller's
 *    response, for our wait and two polling baselines over the same API: fixed 1 s polling (the
 *    Go reference) and exponential backoff from 100 ms ×1.3 (Google's client default); plus
 *    Bigtable reads per completed wait.
 * 3. Event throughput end to end (publish → push → subscriber → Bigtable) and the subscriber's
 *    CPU per event.
 * 4. API throughput (autocannon) for get and create against a bare HTTP server's.
 * 5. Memory of one API instance holding 1,000 and 5,000 waits.
 *
 * Writes bench-results/bench.json and bench-results/wake-latency.svg, and prints a table.
 * BENCH_SCALE (default 1) scales the operation counts.
 */

import { setMaxListeners } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import { ROOT } from '../scripts/run-function.js';
import { type Stack, startStack } from '../scripts/stack.js';
import { BigtableOperationStore } from '../shared/bigtable-store.js';
import { freePort } from '../shared/emulators.js';
import { Messaging } from '../shared/messaging.js';
import type { Operation } from '../shared/model.js';
import { OperationReporter } from '../shared/reporter.js';
import { latencyChart } from './chart.js';
import { httpJson, keepAliveAgent } from './http.js';
import { cpuTimeMs, round, rssMiB, type Summary, summarize } from './stats.js';

const scale = Number(process.env.BENCH_SCALE ?? '1') || 1;
const WAITS = Math.round(300 * scale);
const EVENT_OPS = Math.round(200 * scale);
const EVENTS_PER_OP = 10;
const COMPLETIONS_PER_SECOND = 30;
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
 * Latency from publish accepted to arrival, for 90 messages published at the rate the wake-up
 * benchmark completes operations (30 a second), as `seen` records arrivals by message body.
 */
async function paced(
  messaging: Messaging,
  topic: string,
  tag: string,
  seen: Map<string, number>,
): Promise<number[]> {
  const accepted = new Map<string, number>();
  await Promise.all(
    Array.from({ length: 90 }, async (_, i) => {
      await sleep((i * 1_000) / COMPLETIONS_PER_SECOND);
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

async function measureFloor(stack: Stack) {
  const messaging = new Messaging(stack.config);
  const topic = `bench-floor-${suffix}`;
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
    pubsubPullMs: summarize(pullLatency),
    pubsubPushMs: summarize(pushLatency),
    pushPerSecond: round(pushPerSecond),
    bigtableReadMs: summarize(reads),
    bigtableConditionalWriteMs: summarize(writes),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Wake-up latency

type Strategy = 'notification wait' | 'fixed 1 s polling' | 'backoff 100 ms x1.3';

interface WakeResult {
  latencyMs: Summary;
  values: number[];
  readsPerWait: number;
  requestsPerWait: number;
  missed: number;
}

async function measureWake(stack: Stack, strategy: Strategy): Promise<WakeResult> {
  const api = stack.api.url;
  const names = await createOperations(api, WAITS);
  const messaging = new Messaging(stack.config);
  const doneAt = new Map<string, number>();
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
  };
  const waiting = Promise.all(names.map(waitOne));
  // Let every wait start, then complete the operations at random moments, at about 30 a second:
  // well below what the emulator's push delivers, so that the figure is the wait's, not a queue's.
  await sleep(1_000);
  const accepted = new Map<string, number>();
  const windowMs = Math.max(2_000, (names.length / COMPLETIONS_PER_SECOND) * 1_000);
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
      await reporter.close();
    }),
  );
  const timeout = setTimeout(() => controller.abort(), 90_000);
  await waiting.catch(() => undefined);
  clearTimeout(timeout);
  await messaging.close();
  const values: number[] = [];
  for (const name of names) {
    const a = accepted.get(name);
    const d = doneAt.get(name);
    if (a !== undefined && d !== undefined) values.push(Math.max(0, d - a));
  }
  return {
    latencyMs: summarize(values),
    values,
    readsPerWait: round(reads / names.length, 2),
    requestsPerWait: round(requests / names.length, 2),
    missed: names.length - values.length,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Event throughput

async function measureEvents(stack: Stack) {
  const names = await createOperations(stack.api.url, EVENT_OPS);
  const messaging = new Messaging(stack.config);
  const watchSub = `bench-events-${suffix}`;
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

async function main() {
  const env: Record<string, string | undefined> = {
    LRO_BIGTABLE_TABLE: `bench-${suffix}`,
    LRO_EVENTS_TOPIC: `bench-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `bench-notifications-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `bench-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: process.env.BIGTABLE_EMULATOR_HOST,
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
  };
  say('starting the local stack…');
  const stack = await startStack({
    env,
    apiPort: await freePort(),
    subscriberPort: await freePort(),
  });
  try {
    say('floor: Pub/Sub and Bigtable on their own…');
    const floor = await measureFloor(stack);
    const wake: Record<string, WakeResult> = {};
    for (const strategy of [
      'notification wait',
      'fixed 1 s polling',
      'backoff 100 ms x1.3',
    ] as Strategy[]) {
      say(`wake-up latency: ${strategy}, ${WAITS} concurrent waits…`);
      wake[strategy] = await measureWake(stack, strategy);
    }
    say(`event throughput: ${EVENT_OPS * EVENTS_PER_OP} events…`);
    const events = await measureEvents(stack);
    say('API throughput…');
    const api = await measureApi(stack);
    say('memory of concurrent waits…');
    const memory = await measureWaitMemory(stack);
    const ours = wake['notification wait'] as WakeResult;
    const fixed = wake['fixed 1 s polling'] as WakeResult;
    const backoff = wake['backoff 100 ms x1.3'] as WakeResult;
    const floorMs =
      floor.pubsubPushMs.p50 + floor.bigtableConditionalWriteMs.p50 + floor.pubsubPullMs.p50;
    const results = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      scale,
      floor: { ...floor, completionFloorP50Ms: round(floorMs) },
      wake: Object.fromEntries(
        Object.entries(wake).map(([k, v]) => [k, { ...v, values: undefined }]),
      ),
      ratios: {
        fixedPollingP50OverOurs: round(fixed.latencyMs.p50 / ours.latencyMs.p50, 2),
        backoffP50OverOurs: round(backoff.latencyMs.p50 / ours.latencyMs.p50, 2),
        fixedPollingReadsOverOurs: round(fixed.readsPerWait / ours.readsPerWait, 2),
        backoffReadsOverOurs: round(backoff.readsPerWait / ours.readsPerWait, 2),
        oursP50OverFloor: round(ours.latencyMs.p50 / floorMs, 2),
        eventThroughputOverPushFloor: round(events.eventsPerSecond / floor.pushPerSecond, 2),
        getOverBareHttp: round(
          api.get.requestsPerSecond / api.bareHttpBaseline.requestsPerSecond,
          3,
        ),
      },
      events,
      api,
      memory,
    };
    const dir = resolve(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(
      resolve(dir, 'wake-latency.svg'),
      latencyChart(`Wake-up latency, ${WAITS} concurrent waits (emulators, one machine)`, [
        { label: 'notification wait', values: ours.values, colour: '#1a73e8' },
        { label: 'backoff 100 ms ×1.3', values: backoff.values, colour: '#e8710a' },
        { label: 'fixed 1 s polling', values: fixed.values, colour: '#d93025' },
      ]),
    );
    const row = (name: string, r: WakeResult) =>
      `| ${name} | ${round(r.latencyMs.p50)} | ${round(r.latencyMs.p95)} | ${round(r.latencyMs.p99)} | ${r.readsPerWait} | ${r.missed} |`;
    const lines = [
      '',
      `| wake-up strategy (${WAITS} concurrent waits) | p50 ms | p95 ms | p99 ms | Bigtable reads / wait | missed |`,
      '|---|---|---|---|---|---|',
      row('notification wait (ours)', ours),
      row('backoff 100 ms ×1.3', backoff),
      row('fixed 1 s polling (Go reference)', fixed),
      '',
      '| figure | value | baseline in the same run | ratio |',
      '|---|---|---|---|',
      `| wake-up p50 | ${round(ours.latencyMs.p50)} ms | floor push+write+pull ${round(floorMs)} ms | ${results.ratios.oursP50OverFloor}× floor |`,
      `| polling p50 / ours | ${round(fixed.latencyMs.p50)} / ${round(backoff.latencyMs.p50)} ms | ours ${round(ours.latencyMs.p50)} ms | ${results.ratios.fixedPollingP50OverOurs}× / ${results.ratios.backoffP50OverOurs}× slower |`,
      `| event throughput | ${events.eventsPerSecond} events/s | push to a no-op endpoint ${floor.pushPerSecond} msg/s | ${results.ratios.eventThroughputOverPushFloor} |`,
      `| subscriber CPU | ${events.subscriberCpuMsPerEvent} ms/event | | |`,
      `| GET operation | ${api.get.requestsPerSecond} req/s, p50 ${api.get.latencyMs.p50} ms, p99 ${api.get.latencyMs.p99} ms | bare HTTP ${api.bareHttpBaseline.requestsPerSecond} req/s | ${results.ratios.getOverBareHttp} |`,
      `| create operation | ${api.create.requestsPerSecond} req/s, p50 ${api.create.latencyMs.p50} ms, p99 ${api.create.latencyMs.p99} ms | | |`,
      `| API memory | idle ${memory.idleMiB} MiB, 1,000 waits ${memory.with1000WaitsMiB} MiB, 5,000 waits ${memory.with5000WaitsMiB} MiB | | ${memory.perWaitKiB} KiB per wait |`,
      '',
      `Results: bench-results/bench.json, chart: bench-results/wake-latency.svg`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (err) {
    say(`API output (last lines):\n${stack.api.output().slice(-3_000)}`);
    throw err;
  } finally {
    agent.destroy();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
