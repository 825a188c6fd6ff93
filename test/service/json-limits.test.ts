/**
 * Limits on incoming JSON: a body or an event nested thousands of levels deep is refused (400
 * over HTTP, a dead letter for an event), never a 5xx and never a transient failure that Pub/Sub
 * retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { jsonDepth, parseJsonWithin } from '../../shared/sdk/json-limits.js';
import { parseNotification } from '../../shared/sdk/notifications.js';
import { DEAD_LETTER_ATTRIBUTES } from '../../shared/service/events/subscriber.js';
import { type EventStack, progress, startEventStack, until } from '../support/event-stack.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

/** `{"@type": ..., "v": {"v": ... 1 ...}}` with `levels` nested objects under the Any. */
function nestedAny(levels: number): string {
  return `{"@type":"type.googleapis.com/test.Deep","v":${'{"v":'.repeat(levels)}1${'}'.repeat(levels)}}`;
}

describe('jsonDepth', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('{}')).toBe(1);
    expect(jsonDepth('[[1],{"a":[2]}]')).toBe(3);
    expect(jsonDepth('{"a":"[[[{{{\\"[["}')).toBe(1);
    expect(jsonDepth('['.repeat(10_000) + ']'.repeat(10_000), 64)).toBe(65);
  });

  it('parseJsonWithin refuses depth and size over the limits with a reason', () => {
    expect(parseJsonWithin(nestedAny(10))).toMatchObject({ ok: true });
    expect(parseJsonWithin(nestedAny(5_000))).toEqual({
      ok: false,
      reason: `JSON nested deeper than ${defaults.jsonDepthMax} levels`,
    });
    expect(parseJsonWithin('"abc"', { maxBytes: 3 })).toMatchObject({ ok: false });
    expect(parseJsonWithin('{')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^not JSON/),
    });
  });

  it('a notification nested too deep is not a notification', () => {
    const data = Buffer.from(`{"name":"operations/x","done":false,"metadata":${nestedAny(5_000)}}`);
    expect(
      parseNotification({ data, attributes: { type: 'metadata', operation: 'operations/x' } }),
    ).toBe(undefined);
  });
});

describe('HTTP bodies', () => {
  let s: OperationsStack;
  beforeAll(async () => {
    s = await startOperationsStack();
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('a create whose metadata nests 5,000 levels is 400 INVALID_ARGUMENT, whatever the content type', async () => {
    const body = `{"metadata":${nestedAny(5_000)}}`;
    for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
      const reply = await call(s.url, 'POST', '/v1/operations', body, { 'content-type': type });
      expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(400);
      expect(reply.body).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } });
      expect(reply.body.error.message).toContain('nested deeper');
    }
  });

  it('wait, cancel and batchWait refuse deep bodies with 400', async () => {
    const created = await call(s.url, 'POST', '/v1/operations', {});
    const name: string = created.body.name;
    const deep = `{"x":${'['.repeat(5_000)}${']'.repeat(5_000)}}`;
    for (const path of [`/v1/${name}:wait`, `/v1/${name}:cancel`, '/v1/operations:batchWait']) {
      const reply = await call(s.url, 'POST', path, deep);
      expect(reply.status, path).toBe(400);
      expect(reply.body.error.status, path).toBe('INVALID_ARGUMENT');
    }
  });

  it('metadata nested within the limit is kept as sent', async () => {
    const metadata = JSON.parse(nestedAny(defaults.jsonDepthMax - 3));
    const created = await call(s.url, 'POST', '/v1/operations', { metadata });
    expect(created.status).toBe(200);
    const got = await call(s.url, 'GET', `/v1/${created.body.name}`);
    expect(got.body.metadata).toEqual(metadata);
  });
});

describe('events', () => {
  let s: EventStack;
  beforeAll(async () => {
    s = await startEventStack({
      maxDeliveryAttempts: 5,
      minimumBackoffSeconds: 1,
      maximumBackoffSeconds: 1,
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('an event whose metadata nests 5,000 levels is dead-lettered by the subscriber at once, not retried', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const data = Buffer.from(
      `{"operation":"${operation.name}","type":"metadata","eventId":"deep-1",` +
        `"emitTime":"${new Date().toISOString()}","metadata":${nestedAny(5_000)}}`,
    );
    const messageId = await s.messaging.publish(s.config.topics.events, data, {
      attributes: { operation: operation.name, type: 'metadata' },
    });
    const [letter] = await s.readDeadLetters(1, 40_000);
    expect(letter?.attributes[DEAD_LETTER_ATTRIBUTES.messageId]).toBe(messageId);
    expect(letter?.attributes[DEAD_LETTER_ATTRIBUTES.reason]).toContain('nested deeper');
    // Dead-lettered on the first delivery by the subscriber, not by the subscription's policy.
    expect(letter?.attributes.CloudPubSubDeadLetterSourceDeliveryCount).toBeUndefined();
    await until(
      () => s.subscriber.output().includes('event dead-lettered'),
      10_000,
      'the log line',
    );
    expect(s.subscriber.output()).not.toContain('failing the delivery');
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: false,
      metadata: progress(0),
    });
  }, 60_000);
});
