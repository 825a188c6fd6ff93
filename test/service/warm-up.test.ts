/**
 * Warm before traffic (shared/service/runtime/warm-up.ts): an instance makes its first Bigtable and
 * Pub/Sub calls before the functions framework listens, writes nothing a consumer sees, and starts
 * within its bound when Bigtable and Pub/Sub cannot be reached (then answering 503 as before).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/local/emulators.js';
import { type Listener, Messaging } from '../../shared/sdk/messaging.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { servedTarget } from '../../shared/service/runtime/warm-up.js';
import { openTable } from '../../shared/service/store/bigtable/access.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { testEnv } from '../support/env.js';
import { until } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

const running: RunningFunction[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  await Promise.allSettled(running.map((fn) => fn.stop()));
  await Promise.allSettled(cleanups.map((c) => c()));
});

/** The structured log lines a function wrote. */
function logLines(fn: RunningFunction): Record<string, unknown>[] {
  return fn
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `target` started with Bigtable and Pub/Sub at ports where nothing answers, a 1 s warm-up bound. */
async function startUnreachable(target: 'operations' | 'subscriber'): Promise<RunningFunction> {
  const [bigtablePort, pubsubPort] = [await freePort(), await freePort()];
  const env = testEnv({
    BIGTABLE_EMULATOR_HOST: `127.0.0.1:${bigtablePort}`,
    PUBSUB_EMULATOR_HOST: `127.0.0.1:${pubsubPort}`,
    LRO_WARM_UP_TIMEOUT: '1s',
  });
  const fn = await startFunction(target, env, undefined, { readyTimeoutMs: 180_000 });
  running.push(fn);
  return fn;
}

describe('warm-up before traffic', () => {
  it('names the served function from --target first, then FUNCTION_TARGET', () => {
    expect(servedTarget(['node', 'main.js', '--target=subscriber'], 'operations')).toBe(
      'subscriber',
    );
    expect(servedTarget(['node', 'main.js', '--target', 'sweeper'], undefined)).toBe('sweeper');
    expect(servedTarget(['node', 'main.js'], 'operations')).toBe('operations');
    expect(servedTarget(['node', 'main.js'], undefined)).toBeUndefined();
  });

  for (const target of ['operations', 'subscriber'] as const) {
    it(`${target}: reaches Bigtable and Pub/Sub before listening, and writes nothing anyone sees`, async () => {
      // A bound far above what the warm-up needs: this checks what it does, not how fast (a
      // loaded machine takes seconds).
      const env = testEnv({ LRO_WARM_UP_TIMEOUT: '120s' });
      const config = loadConfig(env);
      const messaging = new Messaging(config);
      await ensureTable(config);
      await messaging.ensureTopic(config.topics.notifications);
      const subscription = `${config.topics.notifications}-watch`;
      await messaging.ensurePullSubscription(subscription, config.topics.notifications);
      cleanups.push(async () => {
        await deleteTable(config);
        await messaging.deleteSubscription(subscription).catch(() => undefined);
        await messaging.deleteTopic(config.topics.notifications);
        await messaging.close();
      });

      // One operation, which the warm-up reads and must leave as it is.
      const store = createStore(config);
      await store.create({ metadata: { '@type': 'type.googleapis.com/test.P', percent: 1 } });
      await store.close();
      const { bigtable, table } = openTable(config);
      cleanups.push(() => bigtable.close());
      const dump = async () =>
        JSON.stringify((await table.getRows())[0].map((r) => [r.id, r.data]));
      const before = await dump();

      // startFunction resolves once the port accepts connections: the warm-up, logged before
      // the framework listens, is already in the output then.
      const fn = await startFunction(target, env, undefined, { readyTimeoutMs: 180_000 });
      running.push(fn);
      const warmed = logLines(fn).find((l) => l.message === 'instance warmed up');
      expect(warmed, fn.output()).toMatchObject({ target, outcome: 'done' });
      expect(Object.keys(warmed?.steps as object).sort()).toEqual(
        target === 'subscriber' ? ['bigtable', 'event decoding', 'pubsub'] : ['bigtable', 'pubsub'],
      );

      // It also rehearsed a request through its own server before listening, about an operation
      // that does not exist (the API a GET, the subscriber a push of an event), which logs
      // nothing and records no failure.
      const rehearsed = logLines(fn).find((l) => l.message === 'instance rehearsed a request');
      expect(rehearsed, fn.output()).toMatchObject({ target });
      const loud = logLines(fn).filter((l) => l.severity !== 'INFO');
      expect(loud, fn.output()).toEqual([]);
      expect(fn.output()).not.toContain('lro-rehearsal');

      // The table holds what it held: no row added, none changed.
      expect(await dump()).toBe(before);
      // The publisher's warm-up published to a topic that does not exist, and created none.
      const [topics] = await messaging.pubsub.getTopics();
      expect(topics.map((t) => t.name).filter((n) => n.includes('lro-warm-up'))).toEqual([]);

      // No notification: a sentinel published now is the first message the subscription sees.
      const received: string[] = [];
      const sentinel = randomUUID();
      const listener: Listener = messaging.listen(subscription, (message) => {
        message.ack();
        received.push(message.data.toString());
      });
      await messaging.publish(config.topics.notifications, { sentinel });
      await until(() => received.length > 0, 10_000, 'the sentinel');
      await listener.close();
      expect(received[0]).toBe(JSON.stringify({ sentinel }));
    }, 240_000);
  }

  it('subscriber: without a complete warm-up, starts within its bound and rehearses nothing', async () => {
    const fn = await startUnreachable('subscriber');
    const lines = logLines(fn);
    expect(
      lines.find((l) => l.message === 'instance starts without a complete warm-up'),
    ).toBeTruthy();
    expect(lines.find((l) => l.message?.toString().includes('rehears'))).toBeUndefined();
  }, 240_000);

  it('starts within its bound when Bigtable and Pub/Sub do not answer, and answers 503', async () => {
    const fn = await startUnreachable('operations');
    const warned = logLines(fn).find(
      (l) => l.message === 'instance starts without a complete warm-up',
    );
    expect(warned, fn.output()).toMatchObject({ target: 'operations' });
    expect(['failed', 'timed out']).toContain(warned?.outcome);
    const res = await fetch(`${fn.url}/v1/operations/absent`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { status: string } }).error.status).toBe('UNAVAILABLE');
  }, 240_000);
});
