/**
 * `npm run bench:fanout`: the API's CPU per wake-up and per full notification it receives, in the
 * same run: the figures that set the fan-out limit of the capacity model (docs/capacity.md).
 * Every API instance receives every wake-up (its waits follow the wake-up topic), and every full
 * notification while it serves a `:watch` stream.
 *
 * Phase 1: one API instance holds one wait (its wake-up subscription is live, and no watch, so
 * it has no notification subscription); the benchmark publishes N wake-ups of other operations,
 * then ends the waited operation and publishes its wake-up last; the wait returning marks the end.
 * Phase 2: the same instance serves one watch (its notification subscription is opened on
 * demand; the time to the watch's first event is recorded, subscription creation included); the
 * benchmark publishes N notifications of other operations (800-byte Operations, as the
 * subscriber does), then announces the watched operation's end; the stream ending marks the end.
 * For each phase the API's CPU over that span, less its idle CPU over a span as long, divided by
 * N, is the CPU per message. Writes bench-results/fanout.json, which `npm run capacity` reads.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from '../scripts/run-function.js';
import { startStack } from '../scripts/stack.js';
import { answerHelp } from '../scripts/usage.js';
import { freePort } from '../shared/local/emulators.js';
import { Messaging } from '../shared/sdk/messaging.js';
import type { Operation } from '../shared/sdk/model.js';
import { publishNotification, publishWakeup } from '../shared/sdk/notifications.js';
import { createStore } from '../shared/service/store/bigtable/operation-store.js';
import { httpJson, keepAliveAgent } from './http.js';
import { cpuTimeMs, round } from './stats.js';

answerHelp(`Usage: npm run bench:fanout
  Measures the API's CPU per notification it receives (the notification fan-out limit of the
  capacity model); writes bench-results/fanout.json. BENCH_SCALE=F scales the notifications.`);

const N = Math.max(100, Math.round(5_000 * Number(process.env.BENCH_SCALE ?? 1)));
const suffix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const say = (text: string) => process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An operation about as large as a finished one with metadata and a response (~800 bytes). */
function sample(i: number): Operation {
  return {
    name: `operations/fanout-${suffix}-${i}`,
    done: true,
    metadata: {
      '@type': 'type.googleapis.com/bench.Progress',
      percent: 100,
      stage: 'done',
      note: 'x'.repeat(300),
    },
    response: { '@type': 'type.googleapis.com/bench.Result', value: 'y'.repeat(300) },
  } as Operation;
}

/** Publishes `count` messages, 500 in flight at most. */
async function publishAll(count: number, publish: (i: number) => Promise<unknown>) {
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    inFlight.push(publish(i));
    if (inFlight.length >= 500) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
}

async function main() {
  const env: Record<string, string | undefined> = {
    LRO_BIGTABLE_TABLE: `fanout-${suffix}`,
    LRO_EVENTS_TOPIC: `fanout-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `fanout-notifications-${suffix}`,
    LRO_WAKEUPS_TOPIC: `fanout-wakeups-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `fanout-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: process.env.BIGTABLE_EMULATOR_HOST,
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
  };
  say('starting the local stack…');
  const stack = await startStack({
    env,
    apiPort: await freePort(),
    subscriberPort: await freePort(),
  });
  const agent = keepAliveAgent();
  const messaging = new Messaging(stack.config);
  const store = createStore(stack.config);
  const { topics } = stack.config;
  try {
    const base = `http://127.0.0.1:${stack.api.port}/v1/operations`;
    const pid = stack.api.process.pid as number;
    const create = async () => ((await httpJson(agent, 'POST', base, {})).body as Operation).name;
    const waitedName = await create();
    const waited = httpJson(agent, 'POST', `${base}/${waitedName.slice(11)}:wait`, {
      timeout: '300s',
    });
    // Let the wait open the instance's wake-up subscription, then take the idle rate.
    await sleep(3_000);
    say('idle CPU of the API holding one wait…');
    const idleStart = performance.now();
    const idleCpuStart = cpuTimeMs(pid);
    await sleep(5_000);
    const idleRate = (cpuTimeMs(pid) - idleCpuStart) / (performance.now() - idleStart);

    say(`phase 1: ${N} wake-ups of other operations…`);
    let started = performance.now();
    let cpuStart = cpuTimeMs(pid);
    await publishAll(N, (i) =>
      publishWakeup(messaging, topics.wakeups, {
        type: 'succeeded',
        operation: sample(i).name,
      }),
    );
    await store.complete(waitedName, { response: { '@type': 'type.googleapis.com/x.Y' } });
    await publishWakeup(messaging, topics.wakeups, { type: 'succeeded', operation: waitedName });
    const response = await waited;
    const wakeupElapsed = performance.now() - started;
    const wakeupCpu = cpuTimeMs(pid) - cpuStart;
    if (!(response.body as Operation).done) throw new Error('the wait ended before the operation');
    const perWakeup = (wakeupCpu - idleRate * wakeupElapsed) / N;

    say('phase 2: a watch opens the notification subscription…');
    const watchedName = await create();
    const watchStarted = performance.now();
    const res = await fetch(`${base}/${watchedName.slice(11)}:watch`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const watchFirstEventMs = performance.now() - watchStarted;
    say(`phase 2: ${N} full notifications of other operations…`);
    started = performance.now();
    cpuStart = cpuTimeMs(pid);
    await publishAll(N, (i) =>
      publishNotification(messaging, topics.notifications, {
        type: 'succeeded',
        operation: sample(i),
      }),
    );
    const done = await store.complete(watchedName, {
      response: { '@type': 'type.googleapis.com/x.Y' },
    });
    await publishNotification(messaging, topics.notifications, {
      type: 'succeeded',
      operation: done.operation,
    });
    while (!(await reader.read()).done) {
      // the stream ends after the done state
    }
    const notificationElapsed = performance.now() - started;
    const notificationCpu = cpuTimeMs(pid) - cpuStart;
    const perNotification = (notificationCpu - idleRate * notificationElapsed) / N;

    const results = {
      date: new Date().toISOString(),
      messages: N,
      apiIdleCpuMsPerSecond: round(idleRate * 1000, 2),
      wakeups: { elapsedMs: round(wakeupElapsed), apiCpuMs: round(wakeupCpu) },
      notifications: { elapsedMs: round(notificationElapsed), apiCpuMs: round(notificationCpu) },
      apiMsPerWakeup: round(perWakeup, 4),
      apiMsPerNotification: round(perNotification, 4),
      notificationOverWakeupCpu: round(perNotification / perWakeup, 2),
      watchFirstEventColdMs: round(watchFirstEventMs),
    };
    const dir = resolve(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'fanout.json'), `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(
      [
        '| figure | value |',
        '|---|---|',
        `| messages received by one API instance, each phase | ${N} |`,
        `| API CPU per wake-up (idle CPU subtracted) | ${results.apiMsPerWakeup} ms |`,
        `| API CPU per full notification (idle CPU subtracted) | ${results.apiMsPerNotification} ms |`,
        `| notification / wake-up CPU | ${results.notificationOverWakeupCpu} |`,
        `| API idle CPU holding one wait | ${results.apiIdleCpuMsPerSecond} ms/s |`,
        `| first watch event, subscription created on demand | ${results.watchFirstEventColdMs} ms |`,
        '',
        'Results: bench-results/fanout.json (read by npm run capacity)',
        '',
      ].join('\n'),
    );
  } finally {
    agent.destroy();
    await store.close();
    await messaging.close();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
