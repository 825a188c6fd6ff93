/**
 * A dead-letter replay keeps the event's first publish time: the whole path through Pub/Sub (the
 * events subscription's dead-letter policy), the dead-letter store, the API's replay and the
 * subscriber. An event published for an operation that did not exist yet, replayed after an
 * operation of that name was created, belongs to no operation of that name: it never applies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter, ListDeadLettersResponse } from '../../shared/sdk/dead-letters.js';
import { uniqueSuffix } from '../support/env.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';

let s: EventStack;
let api: RunningFunction;

beforeAll(async () => {
  s = await startEventStack({
    maxDeliveryAttempts: 5,
    minimumBackoffSeconds: 1,
    maximumBackoffSeconds: 1,
    messageOrdering: false,
  });
  api = await startFunction('operations', s.env);
});

afterAll(async () => {
  await api?.stop();
  await s?.close();
});

/** The subscriber's log entries about one event. */
function logOf(eventId: string): Record<string, unknown>[] {
  return s.subscriber
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(eventId))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('a replayed dead letter', () => {
  it('does not end an operation created after the event was first published', async () => {
    const id = `replayed-${uniqueSuffix()}`;
    const name = `operations/${id}`;
    const stale = event(name, 'succeeded', { response: progress(9) });
    await s.publishEvent(stale);
    let letter: DeadLetter | undefined;
    await until(
      async () => {
        const reply = await call<ListDeadLettersResponse>(
          api.url,
          'GET',
          '/v1/deadLetters?pageSize=1000',
        );
        letter = reply.body.deadLetters?.find((l) => l.operation === name);
        return letter !== undefined;
      },
      60_000,
      'the dead letter',
    );
    const created = await call(api.url, 'POST', '/v1/operations', {
      operationId: id,
      metadata: progress(0),
    });
    expect(created.status).toBe(200);

    const replayed = await call(api.url, 'POST', `/v1/${letter?.name}:replay`, {});
    expect(replayed.status).toBe(200);
    // Handled: ignored (and logged so), or applied.
    await until(
      async () =>
        logOf(stale.eventId).some((e) => e.reason === 'earlier-operation') ||
        (await s.store.get(name)).operation.done,
      30_000,
      'the replayed event handled',
    );
    expect((await call(api.url, 'GET', `/v1/${name}`)).body).toEqual({
      name,
      done: false,
      metadata: progress(0),
    });
    const handled = logOf(stale.eventId).find((e) => e.reason === 'earlier-operation');
    expect(handled?.messageId).not.toBe(undefined);
    expect(logOf(stale.eventId).some((e) => e.message === 'event applied')).toBe(false);
  }, 120_000);
});
