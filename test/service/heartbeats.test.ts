/**
 * Heartbeats, worker clocks and terminal events that can never apply, through the real pipeline:
 * events published to Pub/Sub, pushed to the subscriber function, applied to Bigtable.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../shared/sdk/errors.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { sweep } from '../../shared/service/sweeper/sweeper.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';

let s: EventStack;

beforeAll(async () => {
  s = await startEventStack();
});

afterAll(async () => {
  await s?.close();
});

/** How many `event applied` lines of this type the subscriber wrote for the operation. */
function appliedCount(operation: string, type: string): number {
  return s.subscriber
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((e) => e.message === 'event applied' && e.operation === operation && e.type === type)
    .length;
}

const sweeperDeps = (at: number) => ({
  store: s.store,
  messaging: s.messaging,
  topics: { notifications: s.config.topics.notifications },
  now: () => at,
});

describe('heartbeat events', () => {
  it('renew a running operation with one write and announce nothing', async () => {
    const { operation } = await s.store.create({ heartbeatTimeoutMs: 2_000 });
    const created = Date.now();
    await s.publishEvent(event(operation.name, 'heartbeat', {}));
    await until(() => appliedCount(operation.name, 'heartbeat') === 1, 30_000, 'heartbeat applied');
    // Renewed: not due when creation + timeout has passed (the heartbeat came later).
    const check = await s.store.expire(operation.name, new Date(created + 2_000));
    expect(check.state).toBe('running');
    expect(s.notifications.filter((n) => n.operation.name === operation.name)).toEqual([]);
  });

  it('are refused with a payload, and change nothing once the operation is done', async () => {
    const { operation } = await s.store.create({ heartbeatTimeoutMs: 60_000 });
    await s.store.complete(operation.name, {});
    await s.publishEvent(event(operation.name, 'heartbeat', {}));
    const bad = { ...event(operation.name, 'heartbeat', {}), metadata: progress(1) };
    await s.publishEvent(bad);
    const dead = await s.readDeadLetters(1);
    expect(dead.some((m) => JSON.parse(m.data.toString()).eventId === bad.eventId)).toBe(true);
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: true,
    });
  });

  it('are sent by OperationReporter by itself while it is open, and progress counts as one', async () => {
    const { operation } = await s.store.create({ heartbeatTimeoutMs: 1_000 });
    const reporter = await OperationReporter.open({
      config: s.config,
      operation: operation.name,
      topics: { notifications: false },
      heartbeatIntervalMs: 250,
    });
    try {
      await until(
        () => appliedCount(operation.name, 'heartbeat') >= 3,
        30_000,
        'three heartbeats applied',
      );
      // Renewed: a sweep just before the timeout has passed since the last stored heartbeat
      // leaves it running. (A sweep at the wall clock's now would end it whenever this process
      // or the push stalled for the timeout's 1 s between two heartbeats.)
      const { lastHeartbeatTime } = await s.store.get(operation.name);
      expect(lastHeartbeatTime).toBeDefined();
      await sweep(sweeperDeps((lastHeartbeatTime as Date).getTime() + 900));
      expect((await s.store.get(operation.name)).operation.done).toBe(false);
      await reporter.progress(progress(1));
      await until(() => appliedCount(operation.name, 'metadata') === 1, 30_000, 'progress');
    } finally {
      await reporter.close();
    }
    // Closed: a sweep after the timeout ends the operation, with the last progress kept.
    await sweep(sweeperDeps(Date.now() + 5_000));
    const ended = (await s.store.get(operation.name)).operation;
    expect(ended.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(ended.metadata).toEqual(progress(1));
  });
});

describe('worker clocks', () => {
  it('a 2100 event, then a correct 50 % event: the operation shows 50 %', async () => {
    const { operation } = await s.store.create({});
    const percent = (n: number) => ({ '@type': 'type.googleapis.com/test.Progress', percent: n });
    await s.publishEvent(
      event(operation.name, 'metadata', {
        metadata: percent(10),
        emitTime: '2100-01-01T00:00:00Z',
      }),
    );
    await until(
      async () => (await s.store.get(operation.name)).operation.metadata?.percent === 10,
      30_000,
      '10 % shown',
    );
    await s.publishEvent(event(operation.name, 'metadata', { metadata: percent(50) }));
    await until(
      async () => (await s.store.get(operation.name)).operation.metadata?.percent === 50,
      30_000,
      '50 % shown',
    );
  });
});

describe('terminal events that can never apply', () => {
  const huge = () => ({ '@type': 'type.googleapis.com/test.Blob', data: 'x'.repeat(300 * 1024) });

  it('end their running operation with INTERNAL naming the reason and the message ID', async () => {
    const { operation } = await s.store.create({});
    const messageId = await s.publishEvent(
      event(operation.name, 'succeeded', { response: huge() }),
    );
    await until(
      async () => (await s.store.get(operation.name)).operation.done,
      30_000,
      'operation ended',
    );
    const ended = (await s.store.get(operation.name)).operation;
    expect(ended.error?.code).toBe(Code.INTERNAL);
    expect(ended.error?.message).toContain('exceeds');
    expect(ended.error?.message).toContain(`dead-lettered message ${messageId}`);
    await until(
      () => s.notifications.some((n) => n.operation.name === operation.name && n.type === 'failed'),
      30_000,
      'failed announced',
    );
  });

  it('with a schema violation too, taking the operation from the body', async () => {
    const { operation } = await s.store.create({});
    const body = {
      operation: operation.name,
      type: 'failed',
      eventId: randomUUID(),
      emitTime: new Date().toISOString(),
      error: { code: 0, message: 'not a failure' },
    };
    await s.messaging.publish(s.config.topics.events, body, {});
    await until(
      async () => (await s.store.get(operation.name)).operation.done,
      30_000,
      'operation ended',
    );
    const ended = (await s.store.get(operation.name)).operation;
    expect(ended.error?.code).toBe(Code.INTERNAL);
    expect(ended.error?.message).toMatch(/schema violation/);
  });

  it('leave a done operation as it was, and failed progress only dead-lettered', async () => {
    const done = await s.store.create({});
    await s.store.complete(done.operation.name, {});
    const running = await s.store.create({});
    const a = event(done.operation.name, 'failed', {
      error: { code: 13, message: 'x'.repeat(300 * 1024) },
    });
    const b = event(running.operation.name, 'metadata', { metadata: huge() });
    await s.publishEvent(a);
    await s.publishEvent(b);
    // Earlier tests' dead letters may come first: read until both are there.
    const seen = new Set<string>();
    await until(
      async () => {
        const dead = await s.readDeadLetters(1, 10_000).catch(() => []);
        for (const m of dead) {
          try {
            seen.add(JSON.parse(m.data.toString()).eventId as string);
          } catch {
            // not JSON: not one of ours
          }
        }
        return seen.has(a.eventId) && seen.has(b.eventId);
      },
      60_000,
      'both dead-lettered',
    );
    expect((await s.store.get(done.operation.name)).operation).toEqual({
      name: done.operation.name,
      done: true,
    });
    expect((await s.store.get(running.operation.name)).operation.done).toBe(false);
  });
});
