/**
 * A pending cancellation over HTTP: GET answers `x-lro-cancel-requested` once `:cancel` was called,
 * with the Operation JSON unchanged; the client, the CLI's helper and the worker SDK's HTTP
 * fallback read it. Against the operations function on the emulators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL_REQUESTED_HEADER } from '../../shared/sdk/cancel-requested.js';
import { OperationsClient } from '../../shared/sdk/client.js';
import { Code } from '../../shared/sdk/errors.js';
import { cancellationFromApi } from '../../shared/sdk/reporter.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

describe('x-lro-cancel-requested', () => {
  it('appears on GET once cancellation is requested, and the Operation JSON stays as it was', async () => {
    const { operation } = await s.store.create();
    const id = operation.name.slice('operations/'.length);
    const before = await call(s.url, 'GET', `/v1/operations/${id}`);
    expect(before.status).toBe(200);
    expect(before.headers.get(CANCEL_REQUESTED_HEADER)).toBeNull();

    const requestedAfter = Date.now();
    expect((await call(s.url, 'POST', `/v1/operations/${id}:cancel`, {})).status).toBe(200);
    const after = await call(s.url, 'GET', `/v1/operations/${id}`);
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    const header = after.headers.get(CANCEL_REQUESTED_HEADER) ?? '';
    expect(header).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    // The store's clock and the test's agree to within the emulator's round trips.
    expect(Math.abs(Date.parse(header) - requestedAfter)).toBeLessThan(60_000);

    // HEAD carries it too (same handler), with no body.
    const head = await fetch(`${s.url}/v1/operations/${id}`, { method: 'HEAD' });
    expect(head.headers.get(CANCEL_REQUESTED_HEADER)).toBe(header);
  });

  it('is read by the client and by the worker SDK HTTP fallback, before and after the end', async () => {
    const client = new OperationsClient({ baseUrl: s.url });
    const check = cancellationFromApi(s.url);
    const target = (await s.store.create()).operation.name;
    const other = (await s.store.create()).operation.name;
    expect(await client.getWithCancellation(target)).toEqual({
      operation: { name: target, done: false },
    });
    expect(await check(target)).toBe(false);

    await client.cancel(target);
    const pending = await client.getWithCancellation(target);
    expect(pending.operation).toEqual({ name: target, done: false });
    expect(pending.cancelRequestTime).toEqual(expect.any(String));
    expect(await check(target)).toBe(true);
    expect(await check(other)).toBe(false);

    // The worker ends it CANCELLED: still seen (header and error both say so).
    await s.finish(target, { error: { code: Code.CANCELLED, message: 'stopped' } });
    expect(await check(target)).toBe(true);
    expect((await client.getWithCancellation(target)).cancelRequestTime).toBe(
      pending.cancelRequestTime,
    );
  });

  it('takes credentials from a function, fresh on every poll', async () => {
    const seen: string[] = [];
    let n = 0;
    const check = cancellationFromApi(s.url, () => {
      n++;
      seen.push(`token-${n}`);
      return { authorization: `Bearer token-${n}` };
    });
    const name = (await s.store.create()).operation.name;
    expect(await check(name)).toBe(false);
    expect(await check(name)).toBe(false);
    expect(seen).toEqual(['token-1', 'token-2']);
  });
});
