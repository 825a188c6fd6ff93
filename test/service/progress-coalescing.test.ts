/**
 * The worker SDK's progress coalescing, against the Pub/Sub emulator: at most one metadata event
 * per `progressIntervalMs`, the latest report winning; the terminal event carries what is held
 * (no event of its own); close() publishes what is still held; 0 publishes every report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Listener, Messaging } from '../../shared/sdk/messaging.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import type { Config } from '../../shared/service/runtime/config.js';
import { testConfig, uniqueSuffix } from '../support/env.js';
import { until } from '../support/event-stack.js';

interface Published {
  id: string;
  type: string;
  operation: string;
  step: number | undefined;
}

let config: Config;
let messaging: Messaging;
let listener: Listener;
const subscription = `coalescing-${uniqueSuffix()}`;
const published: Published[] = [];

beforeAll(async () => {
  config = testConfig();
  messaging = new Messaging(config);
  await messaging.ensureTopic(config.topics.events);
  await messaging.ensurePullSubscription(subscription, config.topics.events);
  listener = messaging.listen(subscription, (message) => {
    message.ack();
    const body = JSON.parse(message.data.toString('utf8')) as {
      type: string;
      operation: string;
      metadata?: { step?: number };
    };
    published.push({
      id: message.id,
      type: body.type,
      operation: body.operation,
      step: body.metadata?.step,
    });
  });
});

afterAll(async () => {
  await listener?.close();
  await messaging?.deleteSubscription(subscription);
  await messaging?.deleteTopic(config.topics.events);
  await messaging?.close();
});

const step = (n: number) => ({ '@type': 'type.googleapis.com/test.Progress', step: n });

function reporter(progressIntervalMs: number) {
  const operation = `operations/coalesce-${uniqueSuffix()}`;
  return new OperationReporter({
    operation,
    messaging,
    topics: { events: config.topics.events, notifications: false },
    heartbeatIntervalMs: 0,
    progressIntervalMs,
  });
}

const of = (operation: string) => published.filter((p) => p.operation === operation);

describe('progress coalescing', () => {
  it('holds reports within the interval and lets the terminal event carry the latest', async () => {
    const r = reporter(3_600_000);
    try {
      const first = await r.progress(step(1));
      const held = [r.progress(step(2)), r.progress(step(3))];
      const terminal = await r.succeed({ '@type': 'type.googleapis.com/test.Done' });
      // The held reports were carried by the terminal event: no event of their own.
      expect(await Promise.all(held)).toEqual([terminal, terminal]);
      expect(first).not.toBe(terminal);
      // The listener reads several streams: the two events can arrive in either order.
      await until(() => of(r.operation).length >= 2, 20_000, 'the progress and the end');
      expect(
        of(r.operation)
          .map((p) => [p.type, p.step])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      ).toEqual([
        ['metadata', 1],
        ['succeeded', 3],
      ]);
    } finally {
      await r.close();
    }
  });

  it('publishes only the latest held report when the interval ends', async () => {
    const r = reporter(200);
    try {
      await r.progress(step(1));
      const held = await Promise.all([r.progress(step(2)), r.progress(step(3))]);
      expect(held[0]).toBe(held[1]);
      await until(() => of(r.operation).length >= 2, 20_000, 'two events');
      const byId = new Map(of(r.operation).map((p) => [p.id, p.step]));
      expect(byId.get(held[0] as string)).toBe(3);
      // In either order: the listener reads several streams.
      expect(
        of(r.operation)
          .map((p) => p.step)
          .sort(),
      ).toEqual([1, 3]);
    } finally {
      await r.close();
    }
  });

  it('close() publishes what is still held', async () => {
    const r = reporter(3_600_000);
    await r.progress(step(1));
    const held = r.progress(step(2));
    await r.close();
    const id = await held;
    await until(() => of(r.operation).length >= 2, 20_000, 'two events');
    expect(of(r.operation).find((p) => p.id === id)?.step).toBe(2);
  });

  it('publishes every report when the interval is 0', async () => {
    const r = reporter(0);
    try {
      const ids = await Promise.all([1, 2, 3].map((n) => r.progress(step(n))));
      expect(new Set(ids).size).toBe(3);
      await until(() => of(r.operation).length >= 3, 20_000, 'three events');
      expect(
        of(r.operation)
          .map((p) => p.step)
          .sort(),
      ).toEqual([1, 2, 3]);
    } finally {
      await r.close();
    }
  });
});
