/**
 * Delivery without message ordering, as provisioned by default (and declared by Terraform): one
 * event that cannot be applied is retried and dead-lettered while every other event, of other
 * operations and of its own operation, is applied. Events are published the way the worker SDK
 * does (attributes, the operation name as ordering key), through the real emulator, push
 * subscription and subscriber.
 */

import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionStack, teardownStack } from '../../shared/local/provision.js';
import { Messaging, type ReceivedMessage } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { createStore } from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv } from '../support/env.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { result } from '../support/pipeline.js';

async function doneOf(store: OperationStore, name: string, timeoutMs: number): Promise<Operation> {
  await until(async () => (await store.get(name)).operation.done, timeoutMs, `${name} done`);
  return (await store.get(name)).operation;
}

function collectDeadLetters(messaging: Messaging, subscription: string) {
  const received: ReceivedMessage[] = [];
  const listener = messaging.listen(subscription, (message) => {
    message.ack();
    received.push(message);
  });
  return { received, close: () => listener.close() };
}

describe('an event for an unknown operation, with the default provisioning', () => {
  let s: EventStack;

  beforeAll(async () => {
    // Default ordering (none); backoff short so that the five attempts take seconds.
    s = await startEventStack({
      maxDeliveryAttempts: 5,
      minimumBackoffSeconds: 1,
      maximumBackoffSeconds: 1,
    });
  });

  afterAll(async () => {
    await s?.close();
  });

  it('is retried and dead-lettered while the events of existing operations are applied, before and after', async () => {
    const letters = collectDeadLetters(s.messaging, s.stack.deadLetterSubscription);
    try {
      const unknown = `operations/${randomUUID()}`;
      await s.publishEvent(event(unknown, 'succeeded', { response: result('never') }));
      const finish = async (count: number) => {
        const created = await Promise.all(
          Array.from({ length: count }, () => s.store.create({ metadata: progress(0) })),
        );
        for (const { operation } of created) {
          await s.publishEvent(event(operation.name, 'succeeded', { response: result('ok') }));
        }
        return created.map(({ operation }) => operation.name);
      };
      const before = await finish(5);
      for (const name of before) {
        expect((await doneOf(s.store, name, 30_000)).response).toEqual(result('ok'));
      }
      // The unknown operation's event is still being retried when the others are done.
      expect(letters.received).toHaveLength(0);
      await until(() => letters.received.length >= 1, 60_000, 'the dead letter');
      expect(letters.received[0]?.attributes.operation).toBe(unknown);
      expect(letters.received[0]?.attributes.CloudPubSubDeadLetterSourceDeliveryCount).toBe('5');
      // Delivery goes on once the message has run out of attempts.
      const after = await finish(5);
      for (const name of after) {
        expect((await doneOf(s.store, name, 30_000)).response).toEqual(result('ok'));
      }
    } finally {
      await letters.close();
    }
  }, 120_000);
});

/**
 * A front end that fails every delivery of one event (as a subscriber crashing on it would) and
 * forwards every other push to the subscriber.
 */
async function poisoningFrontEnd(
  target: string,
  poisoned: (event: { eventId?: string }) => boolean,
): Promise<{ url: string; failures: () => number; stop(): Promise<void> }> {
  let failures = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let payload: { eventId?: string } = {};
      try {
        const push = JSON.parse(body.toString()) as { message?: { data?: string } };
        payload = JSON.parse(Buffer.from(push.message?.data ?? '', 'base64').toString());
      } catch {
        // Not an event: forwarded as it is.
      }
      if (poisoned(payload)) {
        failures += 1;
        res.writeHead(500).end('poisoned');
        return;
      }
      const url = new URL(req.url ?? '/', target);
      const forward = request(
        url,
        { method: req.method, headers: { ...req.headers, host: url.host } },
        (reply) => {
          res.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(res);
        },
      );
      forward.on('error', () => res.writeHead(502).end());
      forward.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    failures: () => failures,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('a poisoned event of one operation', () => {
  it('delays neither the later events of its operation nor other operations', async () => {
    const env = testEnv();
    const config = loadConfig(env);
    const messaging = new Messaging(config);
    const store = createStore(config);
    const poisonId = randomUUID();
    let subscriber: RunningFunction | undefined;
    let front: Awaited<ReturnType<typeof poisoningFrontEnd>> | undefined;
    try {
      subscriber = await startFunction('subscriber', env);
      front = await poisoningFrontEnd(subscriber.url, (e) => e.eventId === poisonId);
      const stack = await provisionStack(config, {
        subscriberUrl: front.url,
        messaging,
        // Long enough that the poisoned event is still being retried when the test ends.
        maxDeliveryAttempts: 20,
        minimumBackoffSeconds: 1,
        maximumBackoffSeconds: 2,
      });
      const letters = collectDeadLetters(messaging, stack.deadLetterSubscription);
      try {
        const { operation: a } = await store.create({ metadata: progress(0) });
        const others = await Promise.all(
          Array.from({ length: 5 }, () => store.create({ metadata: progress(0) })),
        );
        // Operation A: the poisoned progress report, then progress and success published by the
        // worker SDK in order, with A's name as ordering key.
        await messaging.publish(
          config.topics.events,
          event(a.name, 'metadata', { eventId: poisonId, metadata: progress(1) }),
          { attributes: { operation: a.name, type: 'metadata' }, orderingKey: a.name },
        );
        const reporter = await OperationReporter.open({
          operation: a.name,
          messaging,
          topics: { events: config.topics.events, notifications: false },
        });
        await reporter.progress(progress(2));
        await reporter.succeed(result('a'));
        await reporter.close();
        for (const { operation } of others) {
          const worker = await OperationReporter.open({
            operation: operation.name,
            messaging,
            topics: { events: config.topics.events, notifications: false },
          });
          await worker.succeed(result('other'));
          await worker.close();
        }

        expect(await doneOf(store, a.name, 30_000)).toEqual({
          name: a.name,
          done: true,
          metadata: progress(2),
          response: result('a'),
        });
        for (const { operation } of others) {
          expect((await doneOf(store, operation.name, 30_000)).response).toEqual(result('other'));
        }
        // Everything completed while the poisoned event was failing and not yet dead-lettered.
        expect(front.failures()).toBeGreaterThanOrEqual(1);
        expect(letters.received).toHaveLength(0);
      } finally {
        await letters.close();
      }
    } finally {
      await subscriber?.stop();
      await front?.stop();
      await teardownStack(config, { messaging }).catch(() => undefined);
      await store.close();
      await messaging.close();
    }
  }, 120_000);
});
