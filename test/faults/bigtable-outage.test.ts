/**
 * Fault: Bigtable stops answering (its emulator frozen with SIGSTOP) for longer than the events
 * subscription's delivery attempts last, so that its dead-letter policy moves valid events to the
 * dead-letter topic; then it comes back (SIGCONT). Nobody replays anything by hand: the sweeper,
 * called every 2 s as under `npm start`, replays the dead letters whose last error was transient
 * while their operations run. In the end each operation ends with its event's result, each event
 * was applied exactly once, and no dead letter is left.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { POLICY_DELIVERY_COUNT } from '../../shared/service/dead-letters/record.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import {
  api,
  collect,
  createOperation,
  type FaultStack,
  type PrivateBigtable,
  progress,
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

describe('Bigtable down past the delivery attempts', () => {
  it('applies the dead-lettered events once it is back, without a person', async () => {
    const deadLetterTap = `${s.config.topics.deadLetter}-tap-${randomUUID().slice(0, 8)}`;
    await s.messaging.ensurePullSubscription(deadLetterTap, s.config.topics.deadLetter);
    const tap = collect(s.messaging, deadLetterTap);
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

      bigtable.freeze();
      try {
        for (const event of events) {
          await worker.publish(s.config.topics.events, event, {
            attributes: { operation: event.operation, type: event.type },
          });
        }
        // Frozen until the subscription's policy gave up on both events.
        await until(
          async () =>
            tap.received.filter((m) => m.attributes[POLICY_DELIVERY_COUNT] !== undefined).length >=
            events.length,
          300_000,
          'both events dead-lettered by the subscription policy',
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

      // Each event applied exactly once (later deliveries, if any, were duplicates).
      const subscriberLines = s.subscriber
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      for (const event of events) {
        const applied = subscriberLines.filter(
          (line) =>
            line.message === 'event applied' &&
            line.eventId === event.eventId &&
            line.outcome === 'applied',
        );
        expect(applied, `${event.eventId} applied`).toHaveLength(1);
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
      expect(sweeper.output()).toContain('dead letter replayed automatically');
    } finally {
      await tap.close();
      await s.messaging.deleteSubscription(deadLetterTap).catch(() => undefined);
      await worker.close();
    }
  }, 480_000);
});
