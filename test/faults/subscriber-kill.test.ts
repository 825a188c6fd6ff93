/**
 * Fault: the subscriber process is SIGKILLed while events flow, and started again on the same
 * port a few seconds later. Pub/Sub push redelivers every delivery that failed or was cut off,
 * so every operation still ends exactly as its worker reported it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import {
  api,
  collect,
  createOperation,
  expectedEnd,
  type FaultStack,
  matchesEnd,
  progress,
  result,
  startFaultStack,
  UnorderedMessaging,
  until,
} from './support.js';

const OPERATIONS = 80;
const PROGRESS_STEPS = 4;

let s: FaultStack;

beforeAll(async () => {
  s = await startFaultStack({ maxDeliveryAttempts: 100, frontEnd: true, ackDeadlineSeconds: 60 });
});

afterAll(async () => {
  await s?.stop();
});

/**
 * `midFlight`: kill as soon as the first changes are applied, with pushes in flight; otherwise
 * kill between the two bursts, so that every delivery of the second burst meets a dead process.
 * Pushes go through the platform's front end (`startFrontEnd`), which holds them while the
 * process is down and sends them again once it is back, as the cloud does.
 */
async function scenario(midFlight: boolean) {
  {
    const notificationsSub = `${s.config.topics.notifications}-count`;
    await s.messaging.ensurePullSubscription(notificationsSub, s.config.topics.notifications);
    const notifications = collect(s.messaging, notificationsSub);
    const reporters: OperationReporter[] = [];
    // Workers publish without ordering keys: see UnorderedMessaging.
    const workerMessaging = new UnorderedMessaging(s.config);
    const applied = () => notifications.received.filter((m) => m.attributes.type !== 'created');
    try {
      const operations: Operation[] = [];
      for (let i = 0; i < OPERATIONS; i++) {
        operations.push(await createOperation(s.api.url, progress(0)));
      }
      for (const op of operations) {
        reporters.push(
          new OperationReporter({
            operation: op.name,
            messaging: workerMessaging,
            topics: { events: s.config.topics.events, notifications: false },
          }),
        );
      }

      // Phase 1: the first half of the progress events; the subscriber is killed while they
      // are being applied.
      const half = PROGRESS_STEPS / 2;
      const phase1 = Promise.all(
        reporters.map(async (reporter) => {
          for (let step = 1; step <= half; step++) await reporter.progress(progress(step));
        }),
      );
      const killAt = midFlight ? 20 : OPERATIONS * half;
      await until(() => applied().length >= killAt, 60_000, 'first changes applied');
      await s.killSubscriber();
      await phase1;

      // Phase 2, while the subscriber is down: the rest of the progress and every terminal event.
      await Promise.all(
        reporters.map(async (reporter, i) => {
          for (let step = half + 1; step <= PROGRESS_STEPS; step++) {
            await reporter.progress(progress(step));
          }
          const end = expectedEnd(i, reporter.operation, PROGRESS_STEPS);
          if (end.error) await reporter.fail(end.error);
          else await reporter.succeed(result(`value of ${i}`));
        }),
      );
      // Let some pushes fail against the closed port before the subscriber comes back.
      await new Promise((r) => setTimeout(r, 2_000));
      await s.restartSubscriber();

      const names = operations.map((op) => op.name);
      const deadline = Date.now() + 120_000;
      let states: Operation[] = [];
      while (Date.now() < deadline) {
        const reply = await api(s.api.url, 'POST', '/v1/operations:batchWait', {
          names,
          timeout: '20s',
        });
        expect(reply.status, reply.text).toBe(200);
        states = (reply.json as { operations: Operation[] }).operations;
        if (states.every((op) => op.done)) break;
      }
      const wrong = states
        .map((op, i) => ({ op, expected: expectedEnd(i, names[i] as string, PROGRESS_STEPS) }))
        .filter(({ op, expected }) => !matchesEnd(op, expected));
      expect(
        wrong.map(({ op }) => op.name),
        `not in their end state; subscriber output:\n${s.subscriber.output().slice(-3000)}`,
      ).toEqual([]);

      // The API reads the same from Bigtable: each operation one by one.
      for (const [i, name] of names.entries()) {
        const reply = await api(s.api.url, 'GET', `/v1/${name}`);
        expect(reply.status).toBe(200);
        expect(matchesEnd(reply.json as Operation, expectedEnd(i, name, PROGRESS_STEPS))).toBe(
          true,
        );
      }
      // Nothing valid was dead-lettered: a marker published to the dead-letter topic now comes
      // after anything Pub/Sub forwarded there earlier; collect until it arrives.
      const dlq = collect(s.messaging, s.provisioned.deadLetterSubscription);
      const marker = `end-of-test-${Date.now()}`;
      await s.messaging.publish(s.config.topics.deadLetter, {}, { attributes: { marker } });
      await until(
        () => dlq.received.some((m) => m.attributes.marker === marker),
        60_000,
        'the marker on the dead-letter subscription',
      );
      await dlq.close();
      expect(
        dlq.received.filter((m) => m.attributes.marker !== marker).map((m) => m.attributes),
      ).toEqual([]);
    } finally {
      await Promise.allSettled(reporters.map((r) => r.close()));
      await workerMessaging.close();
      await notifications.close();
      await s.messaging.deleteSubscription(notificationsSub);
    }
  }
}

describe('subscriber killed and restarted on its port', () => {
  it('every operation still reaches the state its worker reported', () => scenario(false));
  it('every operation still ends right when killed with pushes in flight', () => scenario(true));
});
