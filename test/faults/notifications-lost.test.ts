/**
 * Fault: the API instance's notification subscription is deleted while callers wait, and some
 * operations finish without any notification at all (written straight to the store). Waits still
 * return every completion, through polling Bigtable; the listener recreates its subscription, and
 * waits after that wake on notifications again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
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

let s: FaultStack;

beforeAll(async () => {
  s = await startFaultStack({ env: { LRO_WAIT_TIMEOUT_MAX: '120s' } });
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
      const started = Date.now();
      const waits = names.map((name) =>
        api(s.api.url, 'POST', `/v1/${name}:wait`, { timeout: '90s' }, 120_000),
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
      await new Promise((r) => setTimeout(r, 500));
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
      // Well before any wait's timeout: polling, not the deadline, ended them.
      expect(Date.now() - started).toBeLessThan(60_000);

      // The listener comes back: it recreates its subscription and says so...
      await until(
        async () =>
          (await waiterSubscriptions()).length > 0 &&
          s.api.output().split('notification listener started').length > 2,
        60_000,
        'the listener back',
      );
      // ...and a wait wakes on the notification, well before its first safety-net poll (10 s
      // while the listener is healthy).
      const next = await createOperation(s.api.url);
      const waiting = api(s.api.url, 'POST', `/v1/${next.name}:wait`, { timeout: '60s' }, 90_000);
      await new Promise((r) => setTimeout(r, 1_000));
      const reporter = new OperationReporter({
        operation: next.name,
        messaging: workerMessaging,
        topics: { events: s.config.topics.events, notifications: false },
      });
      await reporter.succeed(result('after recovery'));
      const published = Date.now();
      await reporter.close();
      const reply = await waiting;
      expect(reply.status).toBe(200);
      expect((reply.json as Operation).done).toBe(true);
      expect(Date.now() - published).toBeLessThan(5_000);
    } finally {
      await workerMessaging.close();
    }
  });
});
