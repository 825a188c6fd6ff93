/**
 * The pull subscriber (`subscriberPull` under the functions framework, functions/subscriber-pull.ts)
 * against the emulators, with the stack's two subscriptions to the subscriber made pull
 * subscriptions (provisionStack's `delivery: 'pull'`): events published on the topic are applied
 * and announced; a delivery whose announcement fails is nacked, and its redelivery announces the
 * stored state once, the event applied once; an invalid event is dead-lettered as with push, and
 * the dead-letter store subscription stores it; the status endpoint answers GET and refuses the
 * rest in Google's error shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ProvisionedStack,
  provisionStack,
  teardownStack,
} from '../../shared/local/provision.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { DEAD_LETTER_ATTRIBUTES } from '../../shared/service/events/messages.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { openStores } from '../../shared/service/store/bigtable/stores.js';
import { testEnv } from '../support/env.js';
import { event, progress } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { collectTopic, result, type TopicCollector } from '../support/pipeline.js';
import { until, untilValue } from '../support/until.js';

let config: Config;
let messaging: Messaging;
let stores: ReturnType<typeof openStores>;
let stack: ProvisionedStack;
let fn: RunningFunction;
let collector: TopicCollector;

beforeAll(async () => {
  const env = testEnv();
  config = loadConfig(env);
  messaging = new Messaging(config);
  // Many attempts: the emulator redelivers a nacked message at once, and the redelivery test
  // nacks until the notifications topic is back.
  stack = await provisionStack(config, { delivery: 'pull', messaging, maxDeliveryAttempts: 100 });
  stores = openStores(config);
  collector = await collectTopic(messaging, config.topics.notifications);
  fn = await startFunction('subscriberPull', env);
});

afterAll(async () => {
  await fn?.stop();
  await collector?.close();
  await teardownStack(config, { messaging });
  await stores?.close();
  await messaging?.close();
});

function publish(input: ReturnType<typeof event>): Promise<string> {
  return messaging.publish(config.topics.events, input, {
    attributes: { operation: input.operation, type: input.type },
  });
}

async function status(): Promise<Record<string, unknown>> {
  const reply = await fetch(fn.url);
  expect(reply.status).toBe(200);
  return (await reply.json()) as Record<string, unknown>;
}

describe('the pull subscriber', () => {
  it('pulls both subscriptions and answers its status on GET, refusing other methods', async () => {
    const body = await untilValue(
      async () => {
        const s = await status();
        const open =
          (s.events as { open: boolean }).open && (s.deadLetters as { open: boolean }).open;
        return open ? s : undefined;
      },
      30_000,
      'both streams open',
    );
    expect(body).toMatchObject({
      state: 'pulling',
      events: { subscription: stack.eventsSubscription },
      deadLetters: { subscription: stack.deadLetterStoreSubscription },
    });
    const refused = await fetch(fn.url, { method: 'POST', body: '{}' });
    expect(refused.status).toBe(405);
    expect(refused.headers.get('allow')).toBe('GET, HEAD');
    expect(await refused.json()).toMatchObject({
      error: { code: 405, status: 'UNIMPLEMENTED' },
    });
  });

  it('applies and announces the events published on the topic', async () => {
    const { operation } = await stores.operations.create({ metadata: progress(0) });
    await publish(event(operation.name, 'metadata', { metadata: progress(1) }));
    await until(
      async () => (await stores.operations.get(operation.name)).operation.metadata?.step === 1,
      30_000,
      'the progress applied',
    );
    await publish(
      event(operation.name, 'succeeded', { metadata: progress(2), response: result('pulled') }),
    );
    const done = {
      name: operation.name,
      done: true,
      metadata: progress(2),
      response: result('pulled'),
    };
    // The progress is stored before it is announced: its notification can still be on its way,
    // and come after the success's. Both are waited for, in either order.
    const announced = () =>
      collector.notifications.filter((n) => n.operation.name === operation.name).map((n) => n.type);
    await until(
      () => announced().includes('metadata') && announced().includes('succeeded'),
      30_000,
      'the metadata and succeeded notifications',
    );
    expect((await stores.operations.get(operation.name)).operation).toEqual(done);
    expect(announced().sort()).toEqual(['metadata', 'succeeded']);
    // Each line is written once its change is announced: it may come after the notification.
    await until(
      () => fn.output().includes('"message":"event applied"'),
      10_000,
      'the "event applied" log line',
    );
  });

  it('nacks a delivery whose change could not be announced; the redelivery announces it, applied once', async () => {
    const { operation } = await stores.operations.create({ metadata: progress(0) });
    const succeeded = event(operation.name, 'succeeded', {
      metadata: progress(1),
      response: result('stored'),
    });
    const nackedBefore = ((await status()).events as { nacked: number }).nacked;

    // The notifications topic is gone: the write applies, the announcement cannot be published.
    await collector.close();
    await messaging.deleteTopic(config.topics.notifications);
    await publish(succeeded);
    await until(
      async () => ((await status()).events as { nacked: number }).nacked > nackedBefore,
      30_000,
      'the delivery nacked',
    );
    await until(
      () => fn.output().includes('change applied but not announced'),
      10_000,
      'the "change applied but not announced" log line',
    );
    expect((await stores.operations.get(operation.name)).operation.done).toBe(true);

    // The topic is back: a redelivery announces the stored state.
    await messaging.ensureTopic(config.topics.notifications);
    collector = await collectTopic(messaging, config.topics.notifications);
    await until(
      () => collector.notifications.some((n) => n.operation.name === operation.name),
      30_000,
      'the notification of the redelivered change',
    );
    await collector.settle();
    const stored = {
      name: operation.name,
      done: true,
      metadata: progress(1),
      response: result('stored'),
    };
    expect(collector.notifications.filter((n) => n.operation.name === operation.name)).toEqual([
      { type: 'succeeded', operation: stored },
    ]);
    const history = await stores.operations.history(operation.name);
    const ofEvent = history.events.filter((e) => e.eventId === succeeded.eventId);
    expect(ofEvent.filter((e) => e.outcome === 'APPLIED')).toHaveLength(1);
  });

  it('dead-letters an invalid event, and stores what reaches the dead-letter topic', async () => {
    const messageId = await messaging.publish(config.topics.events, Buffer.from('not an event'));
    const entry = await untilValue(
      async () => {
        const page = await stores.deadLetters.list({ pageSize: 100, pageToken: '' });
        return page.entries.find(
          (e) => e.attributes[DEAD_LETTER_ATTRIBUTES.messageId] === messageId,
        );
      },
      30_000,
      'the dead letter stored',
    );
    expect(entry.data.toString()).toBe('not an event');
    expect(entry.reason).toMatch(/json/i);
    expect(fn.output()).toContain('"message":"event dead-lettered"');
    // Logged once the entry is stored, so it may reach the output after the test saw the entry.
    await until(
      () => fn.output().includes('"message":"dead letter stored"'),
      10_000,
      'the "dead letter stored" log line',
    );
    // The keeping subscription has it too, as with push.
    const kept: string[] = [];
    const listener = messaging.listen(stack.deadLetterSubscription, (m) => {
      m.ack();
      kept.push(m.attributes[DEAD_LETTER_ATTRIBUTES.messageId] ?? '');
    });
    try {
      await until(() => kept.includes(messageId), 30_000, 'the dead letter kept');
    } finally {
      await listener.close();
    }
  });
});
