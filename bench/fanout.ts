/**
 * `npm run bench:fanout`: the API's CPU per notification it receives, the figure that sets the
 * notification fan-out limit of the capacity model (docs/capacity.md). Every API instance receives
 * every notification, whether or not it has a waiter for that operation.
 *
 * One API instance holds one wait (so that its notification subscription is live); the benchmark
 * publishes N notifications of other operations (800-byte Operations, as the subscriber does),
 * then ends the waited operation and announces it last; the wait returning marks the end. The
 * API's CPU over that span, less its idle CPU over a span as long measured just before, divided
 * by N, is the CPU per notification. Writes bench-results/fanout.json, which `npm run capacity`
 * reads.
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
import { publishNotification } from '../shared/sdk/notifications.js';
import { createStore } from '../shared/service/bigtable-store.js';
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

async function main() {
  const env: Record<string, string | undefined> = {
    LRO_BIGTABLE_TABLE: `fanout-${suffix}`,
    LRO_EVENTS_TOPIC: `fanout-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `fanout-notifications-${suffix}`,
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
  try {
    const base = `http://127.0.0.1:${stack.api.port}/v1/operations`;
    const created = await httpJson(agent, 'POST', base, {});
    const name = (created.body as Operation).name;
    const id = name.slice('operations/'.length);
    const waited = httpJson(agent, 'POST', `${base}/${id}:wait`, { timeout: '300s' });
    const pid = stack.api.process.pid as number;
    // Let the wait open the instance's notification subscription, then take the idle rate.
    await sleep(3_000);
    say('idle CPU of the API holding one wait…');
    const idleStart = performance.now();
    const idleCpuStart = cpuTimeMs(pid);
    await sleep(5_000);
    const idleRate = (cpuTimeMs(pid) - idleCpuStart) / (performance.now() - idleStart);

    say(`publishing ${N} notifications of other operations…`);
    const started = performance.now();
    const cpuStart = cpuTimeMs(pid);
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      inFlight.push(
        publishNotification(messaging, stack.config.topics.notifications, {
          type: 'succeeded',
          operation: sample(i),
        }),
      );
      if (inFlight.length >= 500) await Promise.all(inFlight.splice(0));
    }
    await Promise.all(inFlight);
    const done = await store.complete(name, { response: { '@type': 'type.googleapis.com/x.Y' } });
    await publishNotification(messaging, stack.config.topics.notifications, {
      type: 'succeeded',
      operation: done.operation,
    });
    const response = await waited;
    const elapsed = performance.now() - started;
    const cpu = cpuTimeMs(pid) - cpuStart;
    if (!(response.body as Operation).done) throw new Error('the wait ended before the operation');
    const perNotification = (cpu - idleRate * elapsed) / N;
    const results = {
      date: new Date().toISOString(),
      notifications: N,
      elapsedMs: round(elapsed),
      apiCpuMs: round(cpu),
      apiIdleCpuMsPerSecond: round(idleRate * 1000, 2),
      apiMsPerNotification: round(perNotification, 4),
      notificationsPerSecond: round((N / elapsed) * 1000),
    };
    const dir = resolve(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'fanout.json'), `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(
      [
        '| figure | value |',
        '|---|---|',
        `| notifications received by one API instance | ${N} in ${round(elapsed / 1000, 2)} s (${results.notificationsPerSecond}/s) |`,
        `| API CPU per notification (idle CPU subtracted) | ${results.apiMsPerNotification} ms |`,
        `| API idle CPU holding one wait | ${results.apiIdleCpuMsPerSecond} ms/s |`,
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
