/**
 * Fault: the API instance's notification subscription is deleted while callers wait, and some
 * operations finish without any notification at all (written straight to the store). Waits still
 * return every completion, through polling Bigtable; the listener recreates its subscription, and
 * waits after that wake on notifications again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { publishNotification } from '../../shared/sdk/notifications.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import {
  api,
  createOperation,
  type FaultStack,
  result,
  startFaultStack,
  UnorderedMessaging,
  until,
} from './support.js';

const OPERATIONS = 30;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

let s: FaultStack;

beforeAll(async () => {
  s = await startFaultStack({ env: { LRO_WAIT_TIMEOUT_MAX: '300s' } });
});

afterAll(async () => {
  await s?.stop();
});

async function waiterSubscriptions(): Promise<string[]> {
  const [subscriptions] = await s.messaging.pubsub
    .topic(s.config.topics.notifications)
    .getSubscriptions();
  return subscriptions
    .map((sub) => sub.name.split('/').pop() as string)
    .filter((n) => n.includes('-waiter-'));
}

describe('notifications lost', () => {
  it('waits still finish through polling, and wake on notifications once the listener is back', async () => {
    const workerMessaging = new UnorderedMessaging(s.config);
    try {
      const operations: Operation[] = [];
      for (let i = 0; i < OPERATIONS; i++) operations.push(await createOperation(s.api.url));
      const names = operations.map((op) => op.name);
      // Their 300 s timeout is past the 120 s each request is given here: a wait that only its
      // deadline ended fails the test; polling must end them.
      const waits = names.map((name) =>
        api(s.api.url, 'POST', `/v1/${name}:wait`, { timeout: '300s' }, 120_000),
      );
      let listener = '';
      await until(
        async () => {
          listener = (await waiterSubscriptions())[0] ?? '';
          return listener !== '';
        },
        20_000,
        "the API's listener subscription",
      );
      await s.messaging.deleteSubscription(listener);

      // Half end with no notification at all, half through the events topic while the
      // listener's subscription is gone.
      await Promise.all(
        names.map(async (name, i) => {
          if (i % 2 === 0) {
            await s.store.complete(name, { response: result(`direct ${i}`) });
            return;
          }
          const reporter = new OperationReporter({
            operation: name,
            messaging: workerMessaging,
            topics: { events: s.config.topics.events, notifications: false },
          });
          await reporter.succeed(result(`event ${i}`));
          await reporter.close();
        }),
      );

      const replies = await Promise.all(waits);
      for (const [i, reply] of replies.entries()) {
        expect(reply.status, reply.text).toBe(200);
        const op = reply.json as Operation;
        expect(op.done).toBe(true);
        expect(op.response).toEqual(result(i % 2 === 0 ? `direct ${i}` : `event ${i}`));
      }

      // The listener comes back: it recreates its subscription and says so...
      await until(
        async () =>
          (await waiterSubscriptions()).length > 0 &&
          s.api.output().split('notification listener started').length > 2,
        60_000,
        'the listener back',
      );
      // ...and a wait wakes on a notification again. Its row stays running and the completion is
      // announced until the wait answers (when it registers is not observable from here): a
      // done answer can only come from a notification, and the wake-up timing says so.
      const next = await createOperation(s.api.url);
      let answered = false;
      const waiting = api(
        s.api.url,
        'POST',
        `/v1/${next.name}:wait`,
        { timeout: '300s' },
        120_000,
      ).finally(() => {
        answered = true;
      });
      const announced = { name: next.name, done: true, response: result('after recovery') };
      while (!answered) {
        await publishNotification(s.messaging, s.config.topics.notifications, {
          type: 'succeeded',
          operation: announced,
        });
        await Promise.race([waiting.catch(() => undefined), delay(100)]);
      }
      const reply = await waiting;
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual(announced);
      expect(reply.headers['x-lro-bigtable-reads']).toBe('1');
      expect(reply.headers['x-lro-wake-timing']).toMatch(/\S/);
    } finally {
      await workerMessaging.close();
    }
  });
});
