/**
 * Details of the request contract: page sizes are decimal, a parent named twice must agree,
 * batch wait on an unknown name is a 404 as documented, and an event's emitTime before 1970 is a
 * schema violation (metadata order keys are epoch milliseconds).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../shared/sdk/events.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

describe('request details', () => {
  it('pageSize accepts decimal digits only', async () => {
    for (const bad of ['0x10', '1e3', '-1', '+5', ' 5', '5.0', '']) {
      for (const path of ['/v1/operations', '/v1/operations/x/children']) {
        const reply = await call(s.url, 'GET', `${path}?pageSize=${encodeURIComponent(bad)}`);
        expect(reply.status, `${path} pageSize=${JSON.stringify(bad)}`).toBe(400);
        expect(reply.body.error.status).toBe('INVALID_ARGUMENT');
      }
    }
    expect((await call(s.url, 'GET', '/v1/operations?pageSize=16')).status).toBe(200);
    expect((await call(s.url, 'GET', '/v1/operations?pageSize=0')).status).toBe(200);
  });

  it('a parent in the body and a different one in x-lro-parent is a 400; the same one is fine', async () => {
    await call(s.url, 'POST', '/v1/operations', { operationId: 'parent-one' });
    await call(s.url, 'POST', '/v1/operations', { operationId: 'parent-two' });
    const conflict = await call(
      s.url,
      'POST',
      '/v1/operations',
      { parent: 'operations/parent-one' },
      { 'x-lro-parent': 'operations/parent-two' },
    );
    expect(conflict.status).toBe(400);
    expect(conflict.body.error.message).toContain('disagree');
    const same = await call(
      s.url,
      'POST',
      '/v1/operations',
      { parent: 'operations/parent-one' },
      { 'x-lro-parent': 'operations/parent-one' },
    );
    expect(same.status).toBe(200);
    const parent = await call(s.url, 'GET', `/v1/${same.body.name}:getParent`);
    expect(parent.body).toEqual({ parent: 'operations/parent-one' });
  });

  it('batchWait with an unknown name is 404 naming it, as docs/api.md says', async () => {
    const known = await call(s.url, 'POST', '/v1/operations', {});
    const reply = await call(s.url, 'POST', '/v1/operations:batchWait', {
      names: [known.body.name, 'operations/never-created'],
      timeout: '1s',
    });
    expect(reply.status).toBe(404);
    expect(reply.body.error.message).toContain('operations/never-created');
  });

  it('an event emitted before 1970 is a schema violation', () => {
    const event = (emitTime: string) =>
      Buffer.from(
        JSON.stringify({
          operation: 'operations/a',
          type: 'metadata',
          eventId: 'e1',
          emitTime,
          metadata: { '@type': 'type.googleapis.com/test.P' },
        }),
      );
    const before = decodeEvent(event('1969-12-31T23:59:59.999Z'));
    expect(before).toMatchObject({ ok: false, reason: expect.stringContaining('1970') });
    expect(decodeEvent(event('1970-01-01T00:00:00Z')).ok).toBe(true);
  });
});
