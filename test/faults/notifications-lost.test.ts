/**
 * Fault: the API instance's notification subscription is deleted while callers wait, and some
 * operations finish without any notification at all (written straight to the store). Waits still
 * return every completion, through polling Bigtable; the listener recreates its subscription (on
 * the wake-up topic), and waits after that wake on their wake-ups again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { announce } from '../../shared/sdk/notifications.js';
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
    .topic(s.config.topics.wakeups)
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
      // ...and a wait wakes on its wake-up again. The row is completed and announced (with its
      // wake-up) as the subscriber does; a wait whose first read came after the completion
      // proves nothing, so the round runs again, giving the wait more time to register first.
      const topics = {
        notifications: s.config.topics.notifications,
        wakeups: s.config.topics.wakeups,
      };
      let reply: Awaited<ReturnType<typeof api>> | undefined;
      let announced: Operation | undefined;
      for (let round = 1; round <= 10; round++) {
        const next = await createOperation(s.api.url);
        const waiting = api(
          s.api.url,
          'POST',
          `/v1/${next.name}:wait`,
          { timeout: '300s' },
          120_000,
        );
        await delay(100 * round);
        const written = await s.store.complete(next.name, { response: result('after recovery') });
        announced = written.operation;
        await announce(s.messaging, topics, { type: 'succeeded', operation: written.operation });
        reply = await waiting;
        if (reply.headers['x-lro-wake-timing'] !== undefined) break;
      }
      expect(reply?.status).toBe(200);
      expect(reply?.json).toEqual(announced);
      // Its first read saw the row running, the wake-up made it read once more, and no
      // safety-net poll ran: woken by the wake-up, not found by polling.
      expect(reply?.headers['x-lro-bigtable-reads']).toBe('2');
      expect(reply?.headers['x-lro-safety-net-polls']).toBe('0');
      expect(reply?.headers['x-lro-wake-timing']).toMatch(/\S/);
    } finally {
      await workerMessaging.close();
    }
  });
});
