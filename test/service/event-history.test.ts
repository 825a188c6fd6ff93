/**
 * The event history of an operation: every kind of event pushed to the subscriber (under the
 * functions framework, as a push subscription posts it) and its outcome as the API's
 * `GET /v1/operations/{id}/history` shows it, newest first, heartbeat runs collapsed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_VERSIONS } from '../../shared/service/store/event-history.js';
import { type EventStack, startEventStack } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';

let s: EventStack;
let api: RunningFunction;

beforeAll(async () => {
  s = await startEventStack();
  api = await startFunction('operations', s.env);
});

afterAll(async () => {
  await api?.stop();
  await s?.close();
});

const progress = (percent: number) => ({ '@type': 'type.googleapis.com/test.Progress', percent });
const iso = (ms: number) => new Date(ms).toISOString();

interface Sent {
  type: 'metadata' | 'succeeded' | 'failed' | 'heartbeat';
  eventId?: string;
  emitTime?: string;
  publishTime?: string;
  metadata?: unknown;
  response?: unknown;
  error?: unknown;
}

/** Pushes one event to the subscriber as Pub/Sub would; the subscriber's HTTP status. */
async function push(operation: string, sent: Sent): Promise<{ status: number; eventId: string }> {
  const { publishTime = new Date().toISOString(), ...fields } = sent;
  const body = {
    operation,
    eventId: randomUUID(),
    emitTime: new Date().toISOString(),
    ...fields,
  };
  const reply = await fetch(s.stack.pushEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(body)).toString('base64'),
        attributes: { operation, type: sent.type },
        messageId: randomUUID(),
        publishTime,
      },
      subscription: `projects/${s.config.projectId}/subscriptions/direct`,
    }),
  });
  await reply.text();
  return { status: reply.status, eventId: body.eventId };
}

async function history(id: string) {
  const reply = await call(api.url, 'GET', `/v1/operations/${id}/history`);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.events as Record<string, unknown>[];
}

describe('event history', () => {
  it('records each event with its outcome, newest first, heartbeat runs collapsed', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const id = operation.name.slice('operations/'.length);
    const t0 = Date.now();
    const first = await push(operation.name, {
      type: 'metadata',
      metadata: progress(10),
      emitTime: iso(t0),
    });
    // The same event again (a redelivery): a duplicate.
    await push(operation.name, {
      type: 'metadata',
      eventId: first.eventId,
      metadata: progress(10),
      emitTime: iso(t0),
    });
    // Older progress than the stored one: stale.
    const stale = await push(operation.name, {
      type: 'metadata',
      metadata: progress(5),
      emitTime: iso(t0 - 60_000),
    });
    // A clock five minutes ahead: applied at its publishTime.
    const published = iso(Date.now());
    const ahead = await push(operation.name, {
      type: 'metadata',
      metadata: progress(40),
      emitTime: iso(Date.now() + 300_000),
      publishTime: published,
    });
    const beats = [];
    for (let n = 0; n < 3; n++) beats.push(await push(operation.name, { type: 'heartbeat' }));
    const later = await push(operation.name, { type: 'metadata', metadata: progress(50) });
    for (let n = 0; n < 2; n++) await push(operation.name, { type: 'heartbeat' });
    const done = await push(operation.name, {
      type: 'succeeded',
      response: { '@type': 'type.googleapis.com/test.Result' },
    });
    // After the end: a late failure, a duplicate of the first event, a heartbeat.
    const late = await push(operation.name, { type: 'failed', error: { code: 13, message: 'x' } });
    await push(operation.name, {
      type: 'metadata',
      eventId: first.eventId,
      metadata: progress(10),
      emitTime: iso(t0),
    });
    const lateBeat = await push(operation.name, { type: 'heartbeat' });

    const events = await history(id);
    const brief = events.map((e) => [e.type, e.outcome, e.count]);
    expect(brief).toEqual([
      ['heartbeat', 'IGNORED', undefined],
      ['metadata', 'DUPLICATE', undefined],
      ['failed', 'IGNORED', undefined],
      ['succeeded', 'APPLIED', undefined],
      ['heartbeat', 'HEARTBEAT', 2],
      ['metadata', 'APPLIED', undefined],
      ['heartbeat', 'HEARTBEAT', 3],
      ['metadata', 'CLOCK_CORRECTED', undefined],
      ['metadata', 'STALE', undefined],
      ['metadata', 'DUPLICATE', undefined],
      ['metadata', 'APPLIED', undefined],
    ]);
    expect(events.map((e) => e.eventId)).toEqual([
      lateBeat.eventId,
      first.eventId,
      late.eventId,
      done.eventId,
      expect.any(String),
      later.eventId,
      beats[2]?.eventId,
      ahead.eventId,
      stale.eventId,
      first.eventId,
      first.eventId,
    ]);
    const corrected = events[7] as Record<string, string>;
    expect(corrected.countedTime).toBe(published);
    expect(corrected.publishTime).toBe(published);
    expect(Date.parse(corrected.emitTime as string)).toBeGreaterThan(Date.parse(published));
    const run = events[6] as Record<string, string>;
    expect(Date.parse(run.firstApplyTime as string)).toBeLessThanOrEqual(
      Date.parse(run.applyTime as string),
    );
    for (const e of events) {
      expect(Date.parse(e.applyTime as string)).toBeGreaterThanOrEqual(t0 - 1);
      expect(typeof e.publishTime).toBe('string');
    }
    // Newest first.
    const applied = events.map((e) => Date.parse(e.applyTime as string));
    expect([...applied].sort((a, b) => b - a)).toEqual(applied);
  });

  it('keeps the last events whatever the heartbeats, and goes with the operation', async () => {
    const { operation } = await s.store.create({ id: `history-${randomUUID().slice(0, 8)}` });
    const id = operation.name.slice('operations/'.length);
    const kept = await push(operation.name, { type: 'metadata', metadata: progress(1) });
    for (let n = 0; n < HISTORY_VERSIONS + 20; n++) {
      expect((await push(operation.name, { type: 'heartbeat' })).status).toBeLessThan(300);
    }
    let events = await history(id);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ outcome: 'HEARTBEAT' });
    expect(events[0]?.count).toBeLessThanOrEqual(HISTORY_VERSIONS);
    expect(events[1]).toMatchObject({ eventId: kept.eventId, outcome: 'APPLIED' });

    expect((await call(api.url, 'DELETE', `/v1/operations/${id}`)).status).toBe(200);
    expect((await call(api.url, 'GET', `/v1/operations/${id}/history`)).status).toBe(404);
    await s.store.create({ id });
    events = await history(id);
    expect(events).toEqual([]);
  });

  it('never makes a row for an unknown operation', async () => {
    const name = `operations/nobody-${randomUUID().slice(0, 8)}`;
    const reply = await push(name, { type: 'metadata', metadata: progress(1) });
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect((await call(api.url, 'GET', `/v1/${name}/history`)).status).toBe(404);
  });
});
