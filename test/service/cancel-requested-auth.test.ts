/**
 * The worker SDK's HTTP cancellation polling (cancellationFromApi) sends its credentials on the
 * wire: a recording proxy in front of the operations function sees the Authorization header of
 * every poll, fresh from the credentials function each time, and the answers come through it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancellationFromApi } from '../../shared/sdk/reporter.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';
import { type RecordingProxy, startRecordingProxy } from '../support/recording-proxy.js';

let s: OperationsStack;
let proxy: RecordingProxy;

beforeAll(async () => {
  s = await startOperationsStack();
  proxy = await startRecordingProxy(s.url);
});

afterAll(async () => {
  await proxy?.stop();
  await s?.stop();
});

describe('cancellation polling through the API', () => {
  it('sends the Authorization header on every poll, fresh each time', async () => {
    const name = (await s.store.create()).operation.name;
    let n = 0;
    const check = cancellationFromApi(proxy.url, () => ({ authorization: `Bearer token-${++n}` }));
    expect(await check(name)).toBe(false);
    expect((await call(s.url, 'POST', `/v1/${name}:cancel`, {})).status).toBe(200);
    expect(await check(name)).toBe(true);

    const polls = proxy.requests.filter((r) => r.path === `/v1/${name}`);
    expect(polls.map((r) => [r.method, r.headers.authorization])).toEqual([
      ['GET', 'Bearer token-1'],
      ['GET', 'Bearer token-2'],
    ]);
  });

  it('sends fixed headers as given', async () => {
    const name = (await s.store.create()).operation.name;
    const check = cancellationFromApi(`${proxy.url}/`, { authorization: 'Bearer fixed' });
    expect(await check(name)).toBe(false);
    expect(
      proxy.requests.filter((r) => r.path === `/v1/${name}`).map((r) => r.headers.authorization),
    ).toEqual(['Bearer fixed']);
  });
});
