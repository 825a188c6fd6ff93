/**
 * Wake-ups (docs/contracts.md, contract 10) through real HTTP and the emulators: waits follow them
 * and are woken by a bodiless wake-up with one Bigtable read and no safety-net poll; watches still
 * see every progress through a subscription on the notifications topic that exists only while a
 * watch is served (or by polling, LRO_WATCH_MODE=poll); workers' cancellation listening is
 * unchanged; and the subscriber, the sweeper and the API publish one wake-up per ended operation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../../bin/sse.js';
import type { Listener, ReceivedMessage } from '../../shared/sdk/messaging.js';
import type { BatchWaitResponse, Operation } from '../../shared/sdk/model.js';
import { parseWakeup, publishWakeup, type Wakeup } from '../../shared/sdk/notifications.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { sweep } from '../../shared/service/sweeper/sweeper.js';
import { uniqueSuffix } from '../support/env.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

const RESPONSE = { response: { '@type': 'type.googleapis.com/test.Done' } };

let s: OperationsStack;
let polling: OperationsStack;

beforeAll(async () => {
  [s, polling] = await Promise.all([
    startOperationsStack(),
    startOperationsStack({ LRO_WATCH_MODE: 'poll' }),
  ]);
  // The first wait of an instance creates its wake-up listener; later waits find it ready.
  const { operation } = await s.store.create();
  await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '0s' });
});

afterAll(async () => {
  await Promise.all([s?.stop(), polling?.stop()]);
});

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a wait; the request's arrival is not observable from here, a short pause covers it. */
async function startWait(stack: OperationsStack, name: string, timeout: string) {
  const reply = call<Operation>(stack.url, 'POST', `/v1/${name}:wait`, { timeout });
  await delay(300);
  return { reply };
}

/** A pull subscription on a stack's wake-up topic, collecting what arrives. */
async function collectWakeups(stack: { messaging: OperationsStack['messaging']; topic: string }) {
  const name = `wakeup-collector-${uniqueSuffix()}`;
  await stack.messaging.ensurePullSubscription(name, stack.topic);
  const received: { wakeup: Wakeup; message: ReceivedMessage }[] = [];
  const listener: Listener = stack.messaging.listen(name, (message) => {
    message.ack();
    const wakeup = parseWakeup(message);
    if (wakeup) received.push({ wakeup, message });
  });
  return {
    received,
    of: (operation: string) => received.filter((r) => r.wakeup.operation === operation),
    close: async () => {
      await listener.close();
      await stack.messaging.deleteSubscription(name);
    },
  };
}

/** A watch stream: every operation state it sent, and its end. */
function openWatch(stack: OperationsStack, name: string) {
  const states: Operation[] = [];
  const events: string[] = [];
  const controller = new AbortController();
  const waiting: { test: () => boolean; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiting]) {
      if (w.test()) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const ended = (async () => {
    const res = await fetch(`${stack.url}/v1/${name}:watch`, { signal: controller.signal });
    expect(res.status).toBe(200);
    for await (const e of readEvents(res.body as ReadableStream<Uint8Array>)) {
      events.push(e.event);
      if (e.event === 'operation') states.push(JSON.parse(e.data) as Operation);
      check();
    }
  })();
  return {
    states,
    events,
    ended,
    /** Resolves once the stream has sent a state that passes `test`. */
    seen: (test: (op: Operation) => boolean) =>
      new Promise<void>((resolve) => {
        waiting.push({ test: () => states.some(test), resolve });
        check();
      }),
    close: () => controller.abort(),
  };
}

const stepOf = (op: Operation) => (op.metadata as { step?: number } | undefined)?.step;

describe('waits follow the wake-up topic', () => {
  it('a wait wakes on its wake-up (no notification) with one Bigtable read and no safety-net poll', async () => {
    const { operation } = await s.store.create();
    const { reply } = await startWait(s, operation.name, '60s');
    // The completion is written and announced by a wake-up alone: no full notification.
    await s.store.complete(operation.name, RESPONSE);
    await publishWakeup(s.messaging, s.config.topics.wakeups, {
      type: 'succeeded',
      operation: operation.name,
    });
    const result = await reply;
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ name: operation.name, done: true, ...RESPONSE });
    // The wait's first read, then one read on the wake-up; no poll, and the wake-up's timing.
    expect(result.headers.get('x-lro-bigtable-reads')).toBe('2');
    expect(result.headers.get('x-lro-safety-net-polls')).toBe('0');
    expect(result.headers.get('x-lro-wake-timing')).toMatch(/published=\d+, delivered=\d+/);
  });

  it('a batch wait is woken by the wake-ups of its operations', async () => {
    const a = (await s.store.create()).operation.name;
    const b = (await s.store.create()).operation.name;
    const reply = call<BatchWaitResponse>(s.url, 'POST', '/v1/operations:batchWait', {
      names: [a, b],
      timeout: '60s',
    });
    await delay(300);
    for (const name of [a, b]) {
      await s.store.complete(name, RESPONSE);
      await publishWakeup(s.messaging, s.config.topics.wakeups, {
        type: 'succeeded',
        operation: name,
      });
    }
    const result = await reply;
    expect(result.body.operations.map((op) => [op.name, op.done])).toEqual([
      [a, true],
      [b, true],
    ]);
  });

  it('a deletion wake-up ends a wait with NOT_FOUND', async () => {
    const { operation } = await s.store.create();
    const { reply } = await startWait(s, operation.name, '60s');
    const deleted = await call(s.url, 'DELETE', `/v1/${operation.name}`);
    expect(deleted.status).toBe(200);
    const result = await reply;
    expect(result.status).toBe(404);
  });

  it('an instance without a watch has no subscription on the notifications topic', async () => {
    // Waits have been served: their listener follows the wake-up topic...
    expect(await s.waiterSubscriptions()).toHaveLength(1);
    const [sub] = await s.waiterSubscriptions();
    expect(sub?.startsWith(`${s.config.topics.wakeups}-waiter-`)).toBe(true);
    // ...and nothing of this instance listens on the notifications topic, so no full
    // notification reaches it, however many are published.
    const { operation } = await s.store.create();
    await s.notify('metadata', { ...operation, metadata: progress(1) });
    expect(await s.watchSubscriptions()).toEqual([]);
  });
});

describe('watches', () => {
  it('a watch sees every progress; its subscription exists only while a watch is served', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const watch = openWatch(s, operation.name);
    await watch.seen((op) => stepOf(op) === 0);
    const subscriptions = await s.watchSubscriptions();
    expect(subscriptions).toHaveLength(1);

    // Five changes announced at once: each notification carries its state, so the watch sees
    // every one of them, which polling the row would not.
    const steps = [1, 2, 3, 4, 5];
    for (const step of steps) {
      await s.notify('metadata', { ...operation, metadata: progress(step) });
    }
    await Promise.all(steps.map((step) => watch.seen((op) => stepOf(op) === step)));
    const record = await s.finish(operation.name, RESPONSE);
    await watch.ended;
    const running = watch.states.filter((op) => !op.done);
    expect(running.map(stepOf).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(watch.states.at(-1)).toEqual(record);

    // The last watch ended: the subscription goes (after defaults.watchSubscriptionIdleMs). The
    // line is written once the deletion is answered, which a listing may see first: wait for it.
    await until(
      () =>
        s.fn
          .output()
          .split('\n')
          .some(
            (line) =>
              line.includes('notification listener removed: no follower left') &&
              line.includes(String(subscriptions[0])),
          ),
      30_000,
      'the watch subscription removed',
    );
    expect(await s.watchSubscriptions()).toEqual([]);
  }, 60_000);

  it('with LRO_WATCH_MODE=poll a watch reads its row and opens no subscription', async () => {
    const { operation } = await polling.store.create({ metadata: progress(0) });
    const watch = openWatch(polling, operation.name);
    await watch.seen((op) => stepOf(op) === 0);
    for (const step of [1, 2]) {
      // Written to the row only, never announced: the watch finds it by reading.
      await polling.store.updateMetadata(operation.name, progress(step), {
        emitTime: new Date(),
        eventId: `e${step}`,
      });
      await watch.seen((op) => stepOf(op) === step);
    }
    expect(await polling.watchSubscriptions()).toEqual([]);
    await polling.store.complete(operation.name, RESPONSE);
    await watch.ended;
    expect(watch.states.at(-1)?.done).toBe(true);
  }, 60_000);
});

describe('workers', () => {
  it("a worker's cancellation listener still hears the API's cancellation request", async () => {
    const { operation } = await s.store.create();
    const reporter = await OperationReporter.open({ operation: operation.name, config: s.config });
    try {
      expect(reporter.listening).toBe(true);
      const aborted = new Promise<unknown>((resolve) =>
        reporter.signal.addEventListener('abort', () => resolve(reporter.signal.reason), {
          once: true,
        }),
      );
      expect((await call(s.url, 'POST', `/v1/${operation.name}:cancel`, {})).status).toBe(200);
      expect(await aborted).toMatchObject({ code: 1 });
    } finally {
      await reporter.close();
    }
  });
});

describe('who publishes wake-ups', () => {
  let pipeline: EventStack;

  beforeAll(async () => {
    pipeline = await startEventStack();
  });

  afterAll(async () => {
    await pipeline?.close();
  });

  it('the subscriber: one bodiless wake-up per ended operation, none for progress', async () => {
    const wakeups = await collectWakeups({
      messaging: pipeline.messaging,
      topic: pipeline.config.topics.wakeups,
    });
    try {
      const ok = (await pipeline.store.create()).operation.name;
      const bad = (await pipeline.store.create()).operation.name;
      await pipeline.publishEvent(event(ok, 'metadata', { metadata: progress(1) }));
      await until(
        () => pipeline.notifications.some((n) => n.operation.name === ok && n.type === 'metadata'),
        20_000,
        'the progress notification',
      );
      await pipeline.publishEvent(event(ok, 'succeeded', RESPONSE));
      await pipeline.publishEvent(
        event(bad, 'failed', { error: { code: 3, message: 'bad input' } }),
      );
      await until(
        () => wakeups.of(ok).length > 0 && wakeups.of(bad).length > 0,
        20_000,
        'wake-ups',
      );
      // Full notifications are still published for every change (docs/contracts.md, contract 3).
      await until(
        () => pipeline.notifications.some((n) => n.operation.name === bad && n.type === 'failed'),
        20_000,
        'the failed notification',
      );
      for (const [name, type] of [
        [ok, 'succeeded'],
        [bad, 'failed'],
      ] as const) {
        const [only, ...more] = wakeups.of(name);
        expect(more).toEqual([]);
        expect(only?.wakeup.type).toBe(type);
        expect(only?.message.data.length).toBe(0);
        expect(only?.message.attributes).toMatchObject({ operation: name, type });
      }
    } finally {
      await wakeups.close();
    }
  }, 60_000);

  it('the sweeper: a wake-up for an operation ended by its deadline', async () => {
    const wakeups = await collectWakeups({
      messaging: pipeline.messaging,
      topic: pipeline.config.topics.wakeups,
    });
    try {
      const created = Date.now();
      const { operation } = await pipeline.store.create({ heartbeatTimeoutMs: 1_000 });
      const { config } = pipeline;
      await sweep({
        store: pipeline.store,
        messaging: pipeline.messaging,
        topics: { notifications: config.topics.notifications, wakeups: config.topics.wakeups },
        now: () => created + 5_000,
      });
      await until(() => wakeups.of(operation.name).length > 0, 20_000, 'the wake-up');
      expect(wakeups.of(operation.name).map((r) => r.wakeup.type)).toEqual(['failed']);
    } finally {
      await wakeups.close();
    }
  }, 60_000);

  it('the API: a wake-up for a deletion, none for a cancellation request', async () => {
    const wakeups = await collectWakeups({
      messaging: s.messaging,
      topic: s.config.topics.wakeups,
    });
    try {
      const cancelled = (await s.store.create()).operation.name;
      const deleted = (await s.store.create()).operation.name;
      expect((await call(s.url, 'POST', `/v1/${cancelled}:cancel`, {})).status).toBe(200);
      expect((await call(s.url, 'DELETE', `/v1/${deleted}`)).status).toBe(200);
      await until(() => wakeups.of(deleted).length > 0, 20_000, 'the deletion wake-up');
      expect(wakeups.of(deleted).map((r) => r.wakeup.type)).toEqual(['deleted']);
      // Published before the deletion's: a cancellation request's wake-up would be here now.
      expect(wakeups.of(cancelled)).toEqual([]);
    } finally {
      await wakeups.close();
    }
  });
});
