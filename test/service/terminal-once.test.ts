/**
 * Terminal once, through the subscriber under the functions framework and the API's :cancel:
 * for each operation a `succeeded`, a `failed` and a worker's `failed` CANCELLED event, each
 * pushed one to three times, and cancellation requests, all shuffled across operations and sent
 * concurrently. Each operation ends in exactly one of its terminal events' states, keeps it, and
 * only that state is announced as its end (a duplicate of the winning event may announce it
 * again: notifications are at-least-once); no losing event is ever announced.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../shared/sdk/errors.js';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import type { Operation } from '../../shared/sdk/model.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';
import {
  collectTopic,
  postPush,
  pushBody,
  result,
  shuffled,
  type TopicCollector,
} from '../support/pipeline.js';

let s: EventStack;
let api: RunningFunction;
let collector: TopicCollector;

beforeAll(async () => {
  s = await startEventStack({ messageOrdering: false });
  api = await startFunction('operations', s.env);
  collector = await collectTopic(s.messaging, s.config.topics.notifications);
});

afterAll(async () => {
  await collector?.close();
  await api?.stop();
  await s?.close();
});

type Step = { event: WorkerEventInput } | { cancel: string };

/** The operation an event ends, as the store would write it. */
function endedBy(e: WorkerEventInput): Operation {
  if (e.type === 'succeeded') {
    return { name: e.operation, done: true, metadata: progress(2), response: result(e.eventId) };
  }
  if (e.type === 'failed') {
    return {
      name: e.operation,
      done: true,
      metadata: progress(2),
      error: { ...e.error, message: e.error.message ?? '' },
    };
  }
  throw new Error(`${e.type} does not end an operation`);
}

describe('conflicting terminal events, duplicated and shuffled', () => {
  it('end each operation once, in one of their states, and announce no other end', async () => {
    const count = 12;
    const names = (
      await Promise.all(
        Array.from({ length: count }, () => s.store.create({ metadata: progress(0) })),
      )
    ).map((r) => r.operation.name);
    const candidates = new Map<string, Operation[]>();
    const steps: Step[] = [];
    for (const name of names) {
      const e1 = event(name, 'succeeded', { metadata: progress(2), response: result('x') });
      const terminal: WorkerEventInput[] = [
        { ...e1, response: result(e1.eventId) } as WorkerEventInput,
        event(name, 'failed', {
          metadata: progress(2),
          error: { code: Code.INTERNAL, message: 'disk full', details: [] },
        }),
        event(name, 'failed', {
          metadata: progress(2),
          error: { code: Code.CANCELLED, message: 'cancelled by request', details: [] },
        }),
      ];
      candidates.set(name, terminal.map(endedBy));
      for (const e of terminal) {
        const copies = 1 + Math.floor(Math.random() * 3);
        for (let k = 0; k < copies; k++) steps.push({ event: e });
      }
      steps.push({ cancel: name }, { cancel: name });
    }

    const queue = shuffled(steps);
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let step = queue.shift(); step; step = queue.shift()) {
          if ('cancel' in step) {
            const reply = await call(api.url, 'POST', `/v1/${step.cancel}:cancel`, {});
            statuses.push(reply.status);
            continue;
          }
          const e = step.event;
          const reply = await postPush(
            s.stack.pushEndpoint,
            pushBody(JSON.stringify(e), { operation: e.operation, type: e.type }),
          );
          await reply.arrayBuffer();
          statuses.push(reply.status);
        }
      }),
    );
    expect(statuses.filter((status) => status >= 300)).toEqual([]);

    // Every end is announced before its push is answered; the collector may still receive it
    // after a marker published now (Pub/Sub promises no order), so each is waited for, and the
    // marker then gives later copies their chance to arrive.
    const ended = (name: string) =>
      collector.notifications.some(
        (n) => n.operation.name === name && (n.type === 'succeeded' || n.type === 'failed'),
      );
    await until(() => names.every(ended), 30_000, 'the end of every operation announced');
    await collector.settle();
    for (const name of names) {
      const stored = (await s.store.get(name)).operation;
      const states = candidates.get(name) ?? [];
      expect(
        states.some((state) => isDeepStrictEqual(state, stored)),
        `${name} ended as ${JSON.stringify(stored)}`,
      ).toBe(true);
      const ends = collector.notifications.filter(
        (n) => n.operation.name === name && (n.type === 'succeeded' || n.type === 'failed'),
      );
      expect(ends.length, `${name}: its end announced`).toBeGreaterThanOrEqual(1);
      for (const end of ends) {
        expect(end.operation, `${name}: only the stored end is announced`).toEqual(stored);
        expect(end.type).toBe('error' in stored ? 'failed' : 'succeeded');
      }
    }
  });
});
