/**
 * Request IDs (AIP-155) through the API: a request ID identifies one successful create. A create
 * that fails leaves it free; a retry of a successful one returns the same operation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

const create = (body: Record<string, unknown>) => call(s.url, 'POST', '/v1/operations', body);

describe('request IDs', () => {
  it('a create refused with 409 does not bind its request ID to the other caller’s operation', async () => {
    const other = await create({ operationId: 'taken-by-other', requestId: 'other-caller' });
    expect(other.status).toBe(200);

    const refused = await create({ operationId: 'taken-by-other', requestId: 'q-1' });
    expect(refused.status).toBe(409);
    // Q is free: a create with it makes a new operation, not the other caller's.
    const mine = await create({ requestId: 'q-1' });
    expect(mine.status).toBe(200);
    expect(mine.body.name).not.toBe('operations/taken-by-other');
    // ...and a retry of that successful create returns it.
    const retried = await create({ requestId: 'q-1' });
    expect(retried.status).toBe(200);
    expect(retried.body.name).toBe(mine.body.name);
  });

  it('after the other operation is deleted, the request ID still creates an operation of its own', async () => {
    await create({ operationId: 'deleted-later', requestId: 'first-owner' });
    expect((await create({ operationId: 'deleted-later', requestId: 'q-2' })).status).toBe(409);
    expect((await call(s.url, 'DELETE', '/v1/operations/deleted-later')).status).toBe(200);
    const mine = await create({ requestId: 'q-2' });
    expect(mine.status).toBe(200);
    expect(mine.body.name).not.toBe('operations/deleted-later');
  });

  it('a create refused because the parent is missing leaves its request ID free', async () => {
    const refused = await create({ parent: 'operations/no-such-parent', requestId: 'q-3' });
    expect(refused.status).toBe(404);
    const created = await create({ operationId: 'after-missing-parent', requestId: 'q-3' });
    expect(created.status).toBe(200);
    expect(created.body.name).toBe('operations/after-missing-parent');
  });

  it('a caller-chosen ID retried with its request ID returns the same operation, not 409', async () => {
    const first = await create({ operationId: 'retried-create', requestId: 'q-4' });
    const again = await create({ operationId: 'retried-create', requestId: 'q-4' });
    expect(again.status).toBe(200);
    expect(again.body.name).toBe(first.body.name);
  });

  it('50 concurrent creates with one request ID make one operation', async () => {
    const replies = await Promise.all(
      Array.from({ length: 50 }, () => create({ requestId: 'q-5' })),
    );
    const names = new Set(replies.map((r) => (r.status === 200 ? r.body.name : r.status)));
    expect([...names]).toHaveLength(1);
    expect([...names][0]).toMatch(/^operations\//);
  });

  it('a deleted operation frees its request ID', async () => {
    const first = await create({ requestId: 'q-6' });
    expect((await call(s.url, 'DELETE', `/v1/${first.body.name}`)).status).toBe(200);
    const second = await create({ requestId: 'q-6' });
    expect(second.status).toBe(200);
    expect(second.body.name).not.toBe(first.body.name);
  });
});
