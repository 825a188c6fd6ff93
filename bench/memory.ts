/**
 * `npm run bench:memory`: the resident memory of each function, to size `available_memory` in
 * infra/functions/main.tf. Against the emulators, under the Node.js this runs on (run it with the
 * deployed major first on PATH to measure what the cloud runs).
 *
 * - API: idle RSS after a warm-up, RSS once WAITS operations were created, then RSS while it
 *   holds WAITS concurrent waits on them (the default api_concurrency is 1,000), sampled every
 *   100 ms; per-wait memory = (holding − after the creates) / WAITS.
 * - Subscriber: idle RSS after a warm-up, then the peak RSS while it takes push deliveries (the
 *   body Pub/Sub sends) with exactly CONCURRENCY in flight, as one Cloud Run instance is given
 *   at most subscriber_concurrency (80) at once; per-delivery memory = (peak − idle) / CONCURRENCY.
 *   Posted straight to the function: the emulator's own push keeps only about two in flight.
 *
 * Prints one JSON line; figures in MiB (KiB per wait / event).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { type Stack, startStack } from '../scripts/stack.js';
import { answerHelp } from '../scripts/usage.js';
import { freePort } from '../shared/local/emulators.js';
import { eventAttributes, type WorkerEvent } from '../shared/sdk/events.js';
import { httpJson, keepAliveAgent } from './http.js';
import { round, rssMiB } from './stats.js';

answerHelp(`Usage: npm run bench:memory
  Measures each function's memory: idle, per wait (MEMORY_WAITS, default 1000) and per push
  delivery in flight (MEMORY_CONCURRENCY, default 80); infra/functions/main.tf sizes from it.
  MEMORY_HEAP_MIB=N runs the functions with --max-old-space-size=N, the heap limit Node.js sets
  itself in a container of a given memory (256 for 512 MiB: see infra/functions/main.tf).`);

const WAITS = Number(process.env.MEMORY_WAITS ?? '1000');
const EVENT_OPS = Number(process.env.MEMORY_EVENT_OPS ?? '200');
const EVENTS_PER_OP = 10;
/** subscriber_concurrency in infra/functions: deliveries one instance takes at once. */
const CONCURRENCY = Number(process.env.MEMORY_CONCURRENCY ?? '80');
/**
 * The functions' heap limit, as Node.js sets it in a container: it reads the container's memory
 * limit (cgroup) and gives V8 about half of it, so a 512 MiB instance collects garbage well before
 * an unconstrained machine would (Node.js 24 reports a 259 MiB heap limit in a 512 MiB cgroup).
 */
const HEAP_MIB = process.env.MEMORY_HEAP_MIB;
const agent = keepAliveAgent();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const suffix = Date.now().toString(36);
const say = (line: string) => process.stderr.write(`${line}\n`);

/** Samples a process's RSS every 100 ms until stopped; the peak in MiB. */
function sampler(pid: number) {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}

async function createOperations(api: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async () => {
        // A loaded machine may answer 503 now and then: try again.
        for (let attempt = 1; ; attempt++) {
          const res = await httpJson(agent, 'POST', `${api}/v1/operations`, {});
          if (res.status === 200) return (res.body as { name: string }).name;
          if (attempt >= 5) throw new Error(`create answered ${res.status}`);
          await sleep(500);
        }
      }),
    );
    names.push(...batch);
  }
  return names;
}

/** Settled RSS: the minimum of a few samples a second apart (after the garbage collector ran). */
async function settled(pid: number): Promise<number> {
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    await sleep(1_000);
    low = Math.min(low, rssMiB(pid));
  }
  return low;
}

async function measureApi(stack: Stack) {
  const pid = stack.api.process.pid as number;
  // Idle: after a warm-up of a few creates and reads (modules loaded, clients connected).
  for (const name of await createOperations(stack.api.url, 20)) {
    await httpJson(agent, 'GET', `${stack.api.url}/v1/${name}`);
  }
  const idle = await settled(pid);
  const names = await createOperations(stack.api.url, WAITS);
  const afterCreates = await settled(pid);
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const peak = sampler(pid);
  const pending = names.map((name) =>
    httpJson(
      agent,
      'POST',
      `${stack.api.url}/v1/${name}:wait`,
      { timeout: '120s' },
      controller.signal,
    ).catch(() => undefined),
  );
  // Each wait has made its one read and holds its listener entry once the process settles.
  await sleep(Math.max(5_000, WAITS * 3));
  const holding = rssMiB(pid);
  const peakMiB = peak.stop();
  controller.abort();
  await Promise.all(pending);
  return {
    idleMiB: round(idle),
    afterCreatesMiB: round(afterCreates),
    waits: WAITS,
    holdingMiB: round(holding),
    peakMiB: round(peakMiB),
    perWaitKiB: round(((holding - afterCreates) * 1024) / WAITS, 1),
  };
}

/** A push delivery as Pub/Sub sends it, carrying one worker event. */
function pushBody(event: WorkerEvent) {
  return {
    message: {
      data: Buffer.from(JSON.stringify(event)).toString('base64'),
      attributes: eventAttributes(event),
      messageId: randomUUID(),
      publishTime: new Date().toISOString(),
    },
    subscription: 'projects/lro-local/subscriptions/memory',
  };
}

async function measureSubscriber(stack: Stack, names: string[]) {
  const pid = stack.subscriber.process.pid as number;
  const endpoint = new URL(stack.provisioned.pushEndpoint);
  const url = `${stack.subscriber.url}${endpoint.pathname}`;
  const deliveries = names.flatMap((operation) =>
    Array.from({ length: EVENTS_PER_OP }, (_, i) => ({ operation, percent: (i + 1) * 10 })),
  );
  const deliver = async ({ operation, percent }: { operation: string; percent: number }) => {
    const event = {
      version: 1,
      operation,
      eventId: randomUUID(),
      emitTime: new Date().toISOString(),
      type: 'metadata',
      metadata: { '@type': 'type.googleapis.com/bench.Progress', percent },
    } as WorkerEvent;
    const res = await httpJson(agent, 'POST', url, pushBody(event));
    if (res.status >= 300) throw new Error(`push answered ${res.status}`);
  };
  // Warm-up: a few deliveries through the whole path.
  for (const d of deliveries.slice(0, 10)) await deliver(d);
  const idle = await settled(pid);
  const peak = sampler(pid);
  const started = performance.now();
  // Exactly CONCURRENCY deliveries in flight, as Cloud Run allows one instance.
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < deliveries.length) {
        const d = deliveries[next++];
        if (d) await deliver(d);
      }
    }),
  );
  const peakMiB = peak.stop();
  return {
    idleMiB: round(idle),
    deliveries: deliveries.length,
    concurrency: CONCURRENCY,
    seconds: round((performance.now() - started) / 1000, 1),
    peakMiB: round(peakMiB),
    perDeliveryKiB: round(((peakMiB - idle) * 1024) / CONCURRENCY, 1),
  };
}

async function main() {
  const stack = await startStack({
    env: {
      LRO_BIGTABLE_TABLE: `memory-${suffix}`,
      LRO_EVENTS_TOPIC: `memory-events-${suffix}`,
      LRO_NOTIFICATIONS_TOPIC: `memory-notifications-${suffix}`,
      LRO_DEAD_LETTER_TOPIC: `memory-dead-letter-${suffix}`,
      BIGTABLE_EMULATOR_HOST: process.env.BIGTABLE_EMULATOR_HOST,
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
      ...(HEAP_MIB ? { NODE_OPTIONS: `--max-old-space-size=${Number(HEAP_MIB)}` } : {}),
    },
    apiPort: await freePort(),
    subscriberPort: await freePort(),
  });
  try {
    say(`API: idle, then ${WAITS} concurrent waits…`);
    const api = await measureApi(stack);
    say(
      `subscriber: idle, then ${EVENT_OPS * EVENTS_PER_OP} deliveries, ${CONCURRENCY} at a time…`,
    );
    const names = await createOperations(stack.api.url, EVENT_OPS);
    const subscriber = await measureSubscriber(stack, names);
    const heap = HEAP_MIB ? { heapLimitMiB: Number(HEAP_MIB) } : {};
    process.stdout.write(
      `${JSON.stringify({ node: process.version, ...heap, api, subscriber })}\n`,
    );
  } finally {
    await stack.stop();
  }
}

await main();
process.exit(0);
