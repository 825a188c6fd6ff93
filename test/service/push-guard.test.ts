/**
 * The subscriber answers requests that are not Pub/Sub pushes with a 4xx that says what it is,
 * while the operations function, built from the same modules, is not affected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

let subscriber: RunningFunction;

beforeAll(async () => {
  subscriber = await startFunction('subscriber', testEnv());
});

afterAll(async () => {
  await subscriber?.stop();
});

describe('subscriber endpoint', () => {
  it('GET, DELETE and API paths get a 4xx Google error naming the subscriber, not a 500', async () => {
    for (const [method, path, status] of [
      ['GET', '/v1/operations/x', 405],
      ['GET', '/', 405],
      ['DELETE', '/v1/operations/x', 405],
      ['POST', '/v1/operations', 404],
      ['POST', '/v1/operations/x:wait', 404],
    ] as const) {
      const res = await fetch(`${subscriber.url}${path}`, {
        method,
        ...(method === 'POST'
          ? { body: '{}', headers: { 'content-type': 'application/json' } }
          : {}),
      });
      const body = (await res.json()) as {
        error: { code: number; message: string; status: string };
      };
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(body.error.code).toBe(status);
      expect(body.error.message).toContain('subscriber function');
    }
    expect(subscriber.output()).not.toContain('TypeError');
  });
});
