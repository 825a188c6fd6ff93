/**
 * Event identity through the subscriber function (real functions framework, HTTP pushes as a push
 * subscription sends them, real Bigtable and Pub/Sub emulators):
 * - one eventId takes effect at most once, whatever its payload;
 * - an event published before its operation was created belongs to an earlier operation of the
 *   same name and never applies to it (a redelivery, or a replay that keeps the original publish
 *   time in the `lroPublishTime` attribute);
 * - a message whose body does not name a terminal event ends no operation, whatever its
 *   attributes say.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../shared/sdk/errors.js';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import { type EventStack, event, progress, startEventStack } from '../support/event-stack.js';
import { result } from '../support/pipeline.js';

/** The attribute that carries an event's first publish time across a replay (docs/events.md). */
const PUBLISH_TIME_ATTRIBUTE = 'lroPublishTime';

let s: EventStack;

beforeAll(async () => {
  s = await startEventStack();
});

afterAll(async () => {
  await s?.close();
});

/**
 * Pushes one message to the subscriber as the push subscription does; resolves with the HTTP
 * status once the subscriber answered (2xx: acknowledged; 5xx: Pub/Sub would redeliver).
 */
async function push(
  body: WorkerEventInput | Record<string, unknown>,
  options: {
    publishTime?: Date;
    attributes?: Record<string, string>;
    messageId?: string;
  } = {},
): Promise<number> {
  const attributes =
    options.attributes ??
    ('operation' in body && 'type' in body
      ? { operation: String(body.operation), type: String(body.type) }
      : {});
  const res = await fetch(s.stack.pushEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(body)).toString('base64'),
        attributes,
        messageId: options.messageId ?? randomUUID(),
        publishTime: (options.publishTime ?? new Date()).toISOString(),
      },
      subscription: `projects/${s.config.projectId}/subscriptions/direct`,
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The subscriber's log entries about one event. */
function logOf(eventId: string): Record<string, unknown>[] {
  return s.subscriber
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(eventId))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A time strictly between two moments, whatever the clock's resolution. */
async function nextMillisecond(): Promise<void> {
  const start = Date.now();
  while (Date.now() <= start) await new Promise((r) => setImmediate(r));
}

describe('one eventId takes effect once, whatever its payload', () => {
  it('a later event reusing an applied metadata eventId does not replace its metadata', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const first = event(operation.name, 'metadata', { metadata: progress(1) });
    expect(await push(first)).toBeLessThan(300);
    expect((await s.store.get(operation.name)).operation.metadata).toEqual(progress(1));

    const reused = {
      ...first,
      emitTime: new Date(Date.parse(first.emitTime) + 1000).toISOString(),
      metadata: progress(2),
    };
    expect(await push(reused)).toBeLessThan(300);
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: false,
      metadata: progress(1),
    });
    // A plain redelivery of the first is still acknowledged, and a new event still applies.
    expect(await push(first)).toBeLessThan(300);
    expect(await push(event(operation.name, 'metadata', { metadata: progress(3) }))).toBeLessThan(
      300,
    );
    expect((await s.store.get(operation.name)).operation.metadata).toEqual(progress(3));
  });

  it('a succeeded or failed event reusing an applied metadata eventId does not end the operation', async () => {
    const { operation } = await s.store.create({});
    const metadata = event(operation.name, 'metadata', { metadata: progress(1) });
    expect(await push(metadata)).toBeLessThan(300);

    const succeeded = event(operation.name, 'succeeded', {
      eventId: metadata.eventId,
      response: result('stale'),
    });
    expect(await push(succeeded)).toBeLessThan(300);
    const failed = event(operation.name, 'failed', {
      eventId: metadata.eventId,
      error: { code: Code.ABORTED, message: 'stale' },
    });
    expect(await push(failed)).toBeLessThan(300);
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: false,
      metadata: progress(1),
    });
    expect(logOf(metadata.eventId).some((e) => e.reason === 'duplicate')).toBe(true);

    // Its own terminal event, with an ID of its own, ends it.
    expect(
      await push(event(operation.name, 'succeeded', { response: result('fresh') })),
    ).toBeLessThan(300);
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: true,
      metadata: progress(1),
      response: result('fresh'),
    });
  });

  it('a heartbeat reusing an applied eventId does not renew the operation', async () => {
    const { operation } = await s.store.create({ heartbeatTimeoutMs: 60_000 });
    const metadata = event(operation.name, 'metadata', { metadata: progress(1) });
    expect(await push(metadata)).toBeLessThan(300);
    const heartbeat = event(operation.name, 'heartbeat', { eventId: metadata.eventId });
    expect(await push(heartbeat)).toBeLessThan(300);
    const applied = logOf(metadata.eventId).filter((e) => e.message === 'event applied');
    expect(applied.map((e) => e.type)).toEqual(['metadata']);
  });
});

describe('an event published before its operation was created never applies to it', () => {
  it('a redelivered event for a deleted operation does not end the new operation of the same name', async () => {
    const id = `reused-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    await s.store.create({ id, metadata: progress(1) });
    const old = event(name, 'succeeded', { response: result('old') });
    const oldPublishTime = new Date();
    await s.store.delete(name);
    // Delivered while no operation has the name: failed, so that Pub/Sub redelivers it.
    expect(await push(old, { publishTime: oldPublishTime })).toBeGreaterThanOrEqual(500);

    await nextMillisecond();
    await s.store.create({ id, metadata: progress(0) });
    // The redelivery carries the original publishTime: acknowledged, and changes nothing.
    expect(await push(old, { publishTime: oldPublishTime })).toBeLessThan(300);
    expect((await s.store.get(name)).operation).toEqual({
      name,
      done: false,
      metadata: progress(0),
    });
    expect(logOf(old.eventId).some((e) => e.reason === 'earlier-operation')).toBe(true);

    // Events published since its creation apply as usual.
    const now = event(name, 'succeeded', { response: result('new') });
    expect(await push(now)).toBeLessThan(300);
    expect((await s.store.get(name)).operation.response).toEqual(result('new'));
  });

  it('nor does its progress, its failure or its heartbeat', async () => {
    const id = `reused-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    const before = new Date();
    await nextMillisecond();
    await s.store.create({ id, metadata: progress(0), heartbeatTimeoutMs: 60_000 });
    const events = [
      event(name, 'metadata', { metadata: progress(7) }),
      event(name, 'heartbeat', {}),
      event(name, 'failed', { error: { code: Code.INTERNAL, message: 'old' } }),
    ];
    for (const e of events) expect(await push(e, { publishTime: before })).toBeLessThan(300);
    expect((await s.store.get(name)).operation).toEqual({
      name,
      done: false,
      metadata: progress(0),
    });
    for (const e of events) {
      expect(logOf(e.eventId).filter((entry) => entry.message === 'event applied')).toEqual([]);
    }
  });

  it('a replayed event keeps its original publish time (lroPublishTime), the earlier of the two', async () => {
    const id = `reused-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    const before = new Date();
    await nextMillisecond();
    await s.store.create({ id });
    const replayed = event(name, 'succeeded', { response: result('old') });
    // Republished now (a replay), but first published before the operation existed.
    const status = await push(replayed, {
      attributes: {
        operation: name,
        type: 'succeeded',
        [PUBLISH_TIME_ATTRIBUTE]: before.toISOString(),
      },
    });
    expect(status).toBeLessThan(300);
    expect((await s.store.get(name)).operation.done).toBe(false);

    // The attribute can make an event older, never newer than Pub/Sub says it is.
    const forged = event(name, 'succeeded', { response: result('forged') });
    const later = await push(forged, {
      publishTime: before,
      attributes: {
        operation: name,
        type: 'succeeded',
        [PUBLISH_TIME_ATTRIBUTE]: new Date(Date.now() + 60_000).toISOString(),
      },
    });
    expect(later).toBeLessThan(300);
    expect((await s.store.get(name)).operation.done).toBe(false);
  });
});

describe('a dead-lettered message ends an operation only when its body names it', () => {
  it('a body without an operation ends nothing, whatever its attributes say', async () => {
    const { operation } = await s.store.create({});
    for (const body of [{}, { type: 'failed' }, { eventId: randomUUID() }]) {
      const status = await push(body, {
        attributes: { operation: operation.name, type: 'failed' },
      });
      expect(status).toBeLessThan(300);
    }
    const notJson = await fetch(s.stack.pushEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from('not json').toString('base64'),
          attributes: { operation: operation.name, type: 'succeeded' },
          messageId: randomUUID(),
          publishTime: new Date().toISOString(),
        },
        subscription: `projects/${s.config.projectId}/subscriptions/direct`,
      }),
    });
    expect(notJson.status).toBeLessThan(300);
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: false,
    });
  });

  it('a body naming another operation than its attributes ends neither', async () => {
    const a = (await s.store.create({})).operation.name;
    const b = (await s.store.create({})).operation.name;
    const body = { ...event(a, 'failed', { error: { code: 0, message: 'not a failure' } }) };
    expect(await push(body, { attributes: { operation: b, type: 'failed' } })).toBeLessThan(300);
    expect((await s.store.get(a)).operation.done).toBe(false);
    expect((await s.store.get(b)).operation.done).toBe(false);
  });

  it('a terminal body that cannot apply still ends the operation it names', async () => {
    const { operation } = await s.store.create({});
    const body = { ...event(operation.name, 'failed', { error: { code: 0, message: 'zero' } }) };
    expect(await push(body, { attributes: {} })).toBeLessThan(300);
    const ended = (await s.store.get(operation.name)).operation;
    expect(ended.error?.code).toBe(Code.INTERNAL);
    expect(ended.error?.message).toMatch(/schema violation/);
  });

  it('but not an operation created after the message was published', async () => {
    const id = `reused-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    const before = new Date();
    await nextMillisecond();
    await s.store.create({ id });
    const body = { ...event(name, 'failed', { error: { code: 0, message: 'zero' } }) };
    expect(await push(body, { publishTime: before })).toBeLessThan(300);
    expect((await s.store.get(name)).operation.done).toBe(false);
  });
});
