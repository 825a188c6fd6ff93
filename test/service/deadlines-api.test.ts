/**
 * `deadline` and `heartbeatTimeout` on create, real API (docs/contracts.md, contract 5): accepted
 * values, 400s that say what is wrong, the configured defaults, and an Operation JSON without
 * new fields.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;
let withDefaults: OperationsStack;

beforeAll(async () => {
  [s, withDefaults] = await Promise.all([
    startOperationsStack(),
    startOperationsStack({ LRO_DEADLINE_DEFAULT: '3600s', LRO_HEARTBEAT_TIMEOUT_DEFAULT: '120s' }),
  ]);
});

afterAll(async () => {
  await Promise.all([s?.stop(), withDefaults?.stop()]);
});

const inOneHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('create with limits', () => {
  it('accepts a deadline and a heartbeat timeout and keeps the Operation JSON as it was', async () => {
    const before = Date.now();
    const reply = await call(s.url, 'POST', '/v1/operations', {
      deadline: inOneHour(),
      heartbeatTimeout: '60s',
    });
    const after = Date.now();
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(Object.keys(reply.body).sort()).toEqual(['done', 'name']);
    const got = await call(s.url, 'GET', `/v1/${reply.body.name}`);
    expect(Object.keys(got.body).sort()).toEqual(['done', 'name']);
    const due = await s.store.listDue(new Date(Date.now() + 61_000), 100_000);
    // Due when the heartbeat timeout runs out from the create (the deadline is later).
    const entries = due.filter((e) => e.operation === reply.body.name);
    expect(entries).toHaveLength(1);
    const dueAt = entries[0]?.due.getTime() ?? 0;
    expect(dueAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(dueAt).toBeLessThanOrEqual(after + 60_000);
  });

  it.each([
    [{ deadline: '2020-01-01T00:00:00Z' }, /deadline: 2020-01-01T00:00:00Z is in the past/],
    [{ deadline: 'tomorrow' }, /deadline: must be an RFC 3339 timestamp/],
    [{ deadline: '2026-13-01T00:00:00Z' }, /deadline: must be an RFC 3339 timestamp/],
    [{ deadline: '2999-01-01T00:00:00Z' }, /deadline: .* is more than 366 days ahead/],
    [{ deadline: 1_900_000_000 }, /deadline: /],
    [{ heartbeatTimeout: '0s' }, /heartbeatTimeout: must be positive/],
    [{ heartbeatTimeout: '-5s' }, /heartbeatTimeout: must be positive/],
    [{ heartbeatTimeout: '0.5s' }, /heartbeatTimeout: must be at least 1s/],
    [{ heartbeatTimeout: '99999999s' }, /heartbeatTimeout: must be at most 604800s/],
    [{ heartbeatTimeout: '60' }, /heartbeatTimeout: must be a duration such as "60s"/],
    [{ heartbeatTimeout: 60 }, /heartbeatTimeout: /],
  ])('refuses %j with 400 and a message that says why', async (body, message) => {
    const reply = await call(s.url, 'POST', '/v1/operations', body);
    expect(reply.status, JSON.stringify(reply.body)).toBe(400);
    expect(reply.body.error.status).toBe('INVALID_ARGUMENT');
    expect(reply.body.error.message).toMatch(message);
  });

  it('gives operations created without limits the configured defaults', async () => {
    const before = Date.now();
    const reply = await call(withDefaults.url, 'POST', '/v1/operations', {});
    const after = Date.now();
    expect(reply.status).toBe(200);
    const entry = (await withDefaults.store.listDue(new Date(after + 200_000), 100_000)).find(
      (e) => e.operation === reply.body.name,
    );
    // The earlier limit (the 120 s heartbeat timeout from the create) sets the due time; the
    // create happened between the two clock readings, however long it took.
    expect(entry?.due.getTime()).toBeGreaterThanOrEqual(before + 120_000);
    expect(entry?.due.getTime()).toBeLessThanOrEqual(after + 120_000);
    // A request's own limits win over the defaults: its deadline is the due time.
    const deadline = new Date(Date.now() + 10_000);
    const own = await call(withDefaults.url, 'POST', '/v1/operations', {
      heartbeatTimeout: '7200s',
      deadline: deadline.toISOString(),
    });
    const ownEntry = (await withDefaults.store.listDue(new Date(after + 200_000), 100_000)).find(
      (e) => e.operation === own.body.name,
    );
    expect(ownEntry?.due.getTime()).toBe(deadline.getTime());
  });
});
