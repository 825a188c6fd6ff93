/**
 * Response byte budget (LRO_RESPONSE_MAX_BYTES): list and children pages end early with a page
 * token before the operation that would pass it, batch wait answers the states that would pass it
 * as {name, done} and lists them in `truncated`, and the client SDK reads those one by one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationsClient } from '../../shared/sdk/client.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

const BUDGET = 1024 * 1024;
const COUNT = 12;
let s: OperationsStack;
let names: string[];
const parent = 'operations/big-parent';

/** About 200 KiB of metadata. */
const big = (i: number) => ({
  '@type': 'type.googleapis.com/test.Big',
  i,
  blob: 'x'.repeat(200 * 1024),
});

beforeAll(async () => {
  s = await startOperationsStack({ LRO_RESPONSE_MAX_BYTES: String(BUDGET) });
  await s.store.create({ id: 'big-parent' });
  names = [];
  for (let i = 0; i < COUNT; i++) {
    names.push((await s.store.create({ parent, metadata: big(i) })).operation.name);
  }
  names.sort();
}, 120_000);

afterAll(async () => {
  await s?.stop();
});

async function allPages(path: string): Promise<{ names: string[]; pages: number }> {
  const seen: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const res = await fetch(
      `${s.url}${path}${sep}pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
    );
    const text = await res.text();
    expect(res.status, text.slice(0, 200)).toBe(200);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(BUDGET);
    const body = JSON.parse(text) as { operations: { name: string }[]; nextPageToken: string };
    expect(body.operations.length).toBeGreaterThan(0);
    seen.push(...body.operations.map((o) => o.name));
    token = body.nextPageToken;
    pages++;
  } while (token);
  return { names: seen.sort(), pages };
}

describe('response byte budget', () => {
  it('list pages stay within the budget and together list every operation once', async () => {
    const listed = await allPages(
      `/v1/operations?filter=${encodeURIComponent(`parent="${parent}"`)}`,
    );
    expect(listed.names).toEqual(names);
    expect(listed.pages).toBeGreaterThanOrEqual(3);
  });

  it('children pages stay within the budget and together list every child once', async () => {
    const listed = await allPages(`/v1/${parent}/children`);
    expect(listed.names).toEqual(names);
    expect(listed.pages).toBeGreaterThanOrEqual(3);
  });

  it('batchWait answers within the budget, naming what it left out; the client SDK fills those in', async () => {
    const reply = await call(s.url, 'POST', '/v1/operations:batchWait', { names, timeout: '1s' });
    expect(reply.status).toBe(200);
    expect(Buffer.byteLength(JSON.stringify(reply.body))).toBeLessThanOrEqual(BUDGET);
    expect(reply.body.operations.map((o: { name: string }) => o.name)).toEqual(names);
    expect(reply.body.truncated.length).toBeGreaterThan(0);
    for (const op of reply.body.operations) {
      if (reply.body.truncated.includes(op.name))
        expect(op).toEqual({ name: op.name, done: false });
      else expect(op.metadata.blob).toHaveLength(200 * 1024);
    }
    const client = new OperationsClient({ baseUrl: s.url });
    const full = await client.batchWait(names, { timeoutMs: 1000 });
    expect(full.filter((o) => !o.metadata).map((o) => o.name)).toEqual([]);
    expect(
      full.map((o) => (o.metadata as unknown as { i: number }).i).sort((a, b) => a - b),
    ).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });
});
