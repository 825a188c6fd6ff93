/**
 * Newest metadata wins by emitTime, then eventId (docs/events.md): of two metadata events with
 * the same emitTime, the one whose eventId sorts last wins, whichever arrives first. Pushed to
 * the subscriber under the functions framework in both orders; the one that loses is never
 * announced.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { collectTopic, postPush, pushBody, type TopicCollector } from '../support/pipeline.js';

let s: EventStack;
let collector: TopicCollector;

beforeAll(async () => {
  s = await startEventStack({ messageOrdering: false });
  collector = await collectTopic(s.messaging, s.config.topics.notifications);
});

afterAll(async () => {
  await collector?.close();
  await s?.close();
});

async function deliver(e: WorkerEventInput): Promise<void> {
  const reply = await postPush(
    s.stack.pushEndpoint,
    pushBody(JSON.stringify(e), { operation: e.operation, type: e.type }),
  );
  await reply.arrayBuffer();
  expect(reply.status).toBeLessThan(300);
}

describe('metadata events with the same emitTime', () => {
  it('the greater eventId wins in either arrival order, and the other is not announced after it', async () => {
    const emitTime = new Date().toISOString();
    const suffix = randomUUID();
    const pair = (name: string) => ({
      lower: event(name, 'metadata', {
        metadata: progress(1),
        eventId: `a-${suffix}`,
        emitTime,
      }),
      greater: event(name, 'metadata', {
        metadata: progress(2),
        eventId: `b-${suffix}`,
        emitTime,
      }),
    });
    const lowerFirst = (await s.store.create({ metadata: progress(0) })).operation.name;
    const greaterFirst = (await s.store.create({ metadata: progress(0) })).operation.name;

    const one = pair(lowerFirst);
    await deliver(one.lower);
    await deliver(one.greater);
    const other = pair(greaterFirst);
    await deliver(other.greater);
    await deliver(other.lower);

    const winner = (name: string) => ({ name, done: false, metadata: progress(2) });
    expect((await s.store.get(lowerFirst)).operation).toEqual(winner(lowerFirst));
    expect((await s.store.get(greaterFirst)).operation).toEqual(winner(greaterFirst));

    const announced = (name: string) =>
      collector.notifications.filter((n) => n.operation.name === name).map((n) => n.operation);
    // Each change is announced before its push is answered, but may reach the collector after a
    // marker published now (Pub/Sub promises no order): wait for the expected ones, then let the
    // marker give any further one its chance to arrive.
    await until(
      () => announced(lowerFirst).length >= 2 && announced(greaterFirst).length >= 1,
      30_000,
      'the announcements',
    );
    await collector.settle();
    // Both changes of the first operation are announced (notifications carry no order).
    expect(announced(lowerFirst)).toHaveLength(2);
    expect(announced(lowerFirst)).toEqual(
      expect.arrayContaining([
        { name: lowerFirst, done: false, metadata: progress(1) },
        winner(lowerFirst),
      ]),
    );
    expect(announced(greaterFirst)).toEqual([winner(greaterFirst)]);
  });
});
