/** Assertions on Google-style error replies. */
import { expect } from 'vitest';
import { LroError } from '../../shared/sdk/errors.js';

/** The reply is `status` with an error of that code, the status name `name` and a message. */
export function expectError(reply: { status: number; body: any }, status: number, name: string) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  expect(reply.body).toMatchObject({ error: { code: status, status: name } });
  expect(typeof reply.body.error.message).toBe('string');
}

/** How a promise settled: 'resolved', or the message it failed with (an LroError's own message). */
export async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return err instanceof LroError ? err.message : String(err);
  }
}
