/**
 * A change stored but not announced is announced on redelivery: when the notification cannot be
 * published after the write applied, the subscriber fails the delivery (5xx), and the redelivery
 * of the same message (the write now changes nothing) announces the stored state. The test plays
 * Pub/Sub's push: it posts the same message twice to the subscriber under the functions
 * framework, with the notifications topic missing the first time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStack, event, progress, startEventStack } from '../support/event-stack.js';
import {
  collectTopic,
  postPush,
  pushBody,
  result,
  type TopicCollector,
} from '../support/pipeline.js';
import { until } from '../support/until.js';

let s: EventStack;
let collector: TopicCollector | undefined;

beforeAll(async () => {
  s = await startEventStack({ messageOrdering: false });
});

afterAll(async () => {
  await collector?.close();
  await s?.close();
});

describe('a change stored but not announced', () => {
  it('fails the delivery, and its redelivery announces the stored state', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const succeeded = event(operation.name, 'succeeded', {
      metadata: progress(1),
      response: result('stored'),
    });
    const delivery = pushBody(
      JSON.stringify(succeeded),
      { operation: operation.name, type: 'succeeded' },
      'message-1',
    );

    // The notifications topic is gone: the write applies, the announcement cannot be published.
    await s.messaging.deleteTopic(s.config.topics.notifications);
    const first = await postPush(s.stack.pushEndpoint, delivery);
    await first.arrayBuffer();
    expect(first.status).toBeGreaterThanOrEqual(500);
    const stored = (await s.store.get(operation.name)).operation;
    expect(stored).toEqual({
      name: operation.name,
      done: true,
      metadata: progress(1),
      response: result('stored'),
    });
    expect(s.subscriber.output()).toContain('change applied but not announced');

    // The topic is back; Pub/Sub redelivers the same message.
    await s.messaging.ensureTopic(s.config.topics.notifications);
    collector = await collectTopic(s.messaging, s.config.topics.notifications);
    const second = await postPush(s.stack.pushEndpoint, delivery);
    await second.arrayBuffer();
    expect(second.status).toBeLessThan(300);
    await until(
      () => collector?.notifications.some((n) => n.operation.name === operation.name) ?? false,
      30_000,
      'the notification of the redelivered change',
    );
    await collector.settle();
    expect(collector.notifications.filter((n) => n.operation.name === operation.name)).toEqual([
      { type: 'succeeded', operation: stored },
    ]);
  });
});
