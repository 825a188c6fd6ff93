/**
 * Fault: Bigtable stops answering (its emulator frozen with SIGSTOP) for longer than the events
 * subscription's delivery attempts last, so that its dead-letter policy moves valid events to the
 * dead-letter topic; then it comes back (SIGCONT). Nobody replays anything by hand: the sweeper,
 * called every 2 s as under `npm start`, replays the dead letters whose last error was transient
 * while their operations run. In the end each operation ends with its event's result, each event
 * was applied exactly once, and no dead letter is left.
 *
 * The test plays Pub/Sub's part up to the dead-letter topic, so that its length does not depend
 * on the emulator's redelivery pace: it posts each event's delivery attempts to the subscriber's
 * push endpoint itself (each fails at the frozen store), then forwards the same bytes to the
 * dead-letter topic with the attributes a dead-letter policy adds. From there everything is real:
 * the dead-letter topic's push subscription to the subscriber (failing while frozen, redelivered
 * by the emulator), the store, the sweeper's replay through the events topic and its push
 * subscription.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { POLICY_DELIVERY_COUNT } from '../../shared/service/dead-letters/record.js';
import { POLICY_PUBLISH_TIME_ATTRIBUTE } from '../../shared/service/events/publish-time.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { postPush } from '../support/pipeline.js';
import {
  api,
  createOperation,
  type FaultStack,
  type PrivateBigtable,
  progress,
  pushBody,
  result,
  startFaultStack,
  startPrivateBigtable,
  UnorderedMessaging,
  until,
  workerEvent,
} from './support.js';

const DELIVERY_ATTEMPTS = 5;

let bigtable: PrivateBigtable;
let s: FaultStack;
let sweeper: RunningFunction;
let sweeping = true;
let sweeps: Promise<void> = Promise.resolve();

beforeAll(async () => {
  bigtable = await startPrivateBigtable();
  s = await startFaultStack({
    env: { BIGTABLE_EMULATOR_HOST: bigtable.host, LRO_WAIT_TIMEOUT_MAX: '120s' },
    maxDeliveryAttempts: DELIVERY_ATTEMPTS,
    // A delivery that hits the frozen store fails after the call deadline (15 s) and the failure
    // record (1 s); it must not be taken for a lost one meanwhile.
    ackDeadlineSeconds: 30,
  });
  sweeper = await startFunction('sweeper', s.env);
  // Cloud Scheduler's part: call the sweeper every 2 s, one call at a time.
  sweeps = (async () => {
    while (sweeping) {
      await api(sweeper.url, 'POST', '/', {}, 30_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 2_000));
    }
  })();
});

afterAll(async () => {
  sweeping = false;
  bigtable?.resume();
  await sweeps;
  await sweeper?.stop();
  await s?.stop();
  await bigtable?.stop();
});

const notStored = 'dead letter not stored; failing the delivery so that it is redelivered';

/** The JSON log lines a function printed so far (a line still being written is left out). */
function logLines(fn: RunningFunction): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of fn.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a whole line yet.
    }
  }
  return lines;
}

describe('Bigtable down past the delivery attempts', () => {
  it('applies the dead-lettered events once it is back, without a person', async () => {
    const worker = new UnorderedMessaging(s.config);
    try {
      const succeeding = (await createOperation(s.api.url, progress(0))).name;
      const failing = (await createOperation(s.api.url, progress(0))).name;
      const events = [
        workerEvent(succeeding, 'succeeded', {
          metadata: progress(9),
          response: result('made it'),
        }),
        workerEvent(failing, 'failed', {
          metadata: progress(4),
          error: { code: 9, message: 'input rejected', details: [] },
        }),
      ];
      const messages = events.map((event, index) => ({
        data: JSON.stringify(event),
        attributes: { operation: event.operation, type: event.type },
        messageId: `outage-${index + 1}`,
        publishTime: new Date().toISOString(),
      }));
      const eventsSubscription = `projects/${s.config.projectId}/subscriptions/${s.provisioned.eventsSubscription}`;

      bigtable.freeze();
      try {
        // Pub/Sub's push of the events subscription: every attempt fails at the frozen store.
        await Promise.all(
          messages.map(async (message) => {
            for (let attempt = 1; attempt <= DELIVERY_ATTEMPTS; attempt++) {
              const body = pushBody(
                message.data,
                message.attributes,
                message.messageId,
                eventsSubscription,
              );
              const reply = await postPush(s.provisioned.pushEndpoint, {
                ...body,
                message: { ...body.message, publishTime: message.publishTime },
                deliveryAttempt: attempt,
              });
              const text = await reply.text();
              expect(reply.status, text).toBeGreaterThanOrEqual(500);
            }
          }),
        );
        // The policy gives up: the same bytes go to the dead-letter topic with what it adds.
        for (const message of messages) {
          await worker.publish(s.config.topics.deadLetter, Buffer.from(message.data), {
            attributes: {
              ...message.attributes,
              [POLICY_DELIVERY_COUNT]: String(DELIVERY_ATTEMPTS),
              CloudPubSubDeadLetterSourceSubscription: s.provisioned.eventsSubscription,
              CloudPubSubDeadLetterSourceSubscriptionProject: s.config.projectId,
              [POLICY_PUBLISH_TIME_ATTRIBUTE]: message.publishTime,
            },
          });
        }
        // Keeping them fails as well while the store is frozen; Pub/Sub delivers them again.
        await until(
          () => logLines(s.subscriber).filter((l) => l.message === notStored).length >= 2,
          120_000,
          'both dead-letter deliveries failed at the frozen store',
        ).catch((err: unknown) => {
          throw new Error(`${String(err)}; subscriber:\n${s.subscriber.output().slice(-6000)}`);
        });
      } finally {
        bigtable.resume();
      }

      const [succeeded, failed] = await Promise.all(
        [succeeding, failing].map(async (name) => {
          const reply = await api(
            s.api.url,
            'POST',
            `/v1/${name}:wait`,
            { timeout: '100s' },
            120_000,
          );
          expect(reply.status, reply.text).toBe(200);
          return reply.json as Operation;
        }),
      );
      expect(succeeded).toEqual({
        name: succeeding,
        done: true,
        metadata: progress(9),
        response: result('made it'),
      });
      expect(failed).toEqual({
        name: failing,
        done: true,
        metadata: progress(4),
        error: { code: 9, message: 'input rejected', details: [] },
      });

      // Each event applied exactly once (later deliveries, if any, were duplicates). The line is
      // written once the change is announced, and the wake-up can end the wait before that.
      const appliedLines = (eventId: string) =>
        logLines(s.subscriber).filter(
          (line) =>
            line.message === 'event applied' &&
            line.eventId === eventId &&
            line.outcome === 'applied',
        );
      await until(
        () => events.every((event) => appliedLines(event.eventId).length > 0),
        30_000,
        'the "event applied" line of each event',
      );
      const subscriberLines = logLines(s.subscriber);
      for (const event of events) {
        expect(appliedLines(event.eventId), `${event.eventId} applied`).toHaveLength(1);
        // Kept with the error of its last delivery, which marked it for the automatic replay.
        const kept = subscriberLines.find(
          (line) => line.message === 'event dead-lettered' && line.operation === event.operation,
        );
        expect(kept?.reason).toMatch(/^delivery attempts exhausted: Bigtable unavailable/);
        expect(kept?.autoReplayTime).toEqual(expect.any(String));
      }
      // The dead letters went with their replay: none is left for a person.
      await until(
        async () => {
          const reply = await api(s.api.url, 'GET', '/v1/deadLetters?pageSize=100');
          const letters = (reply.json as { deadLetters?: { operation?: string }[] }).deadLetters;
          return reply.status === 200 && letters?.length === 0;
        },
        20_000,
        'no dead letter left',
      );
      // The sweeper writes its line once the entry is removed, which the listing can see first.
      await until(
        () => sweeper.output().includes('dead letter replayed automatically'),
        20_000,
        "the sweeper's replay line",
      );
    } finally {
      await worker.close();
    }
  }, 480_000);
});
