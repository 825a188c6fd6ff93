/**
 * The wait's timeout through real HTTP on the real store, with the waiter on a fake clock: the
 * default timeout when none is given, the maximum instead of a larger one, and the requested one
 * otherwise. The clock says exactly when each wait's deadline is, so nothing here depends on the
 * machine's speed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { createApiHandler } from '../../shared/service/api/api.js';
import type { ApiRequest } from '../../shared/service/http/io.js';
import type { Config } from '../../shared/service/runtime/config.js';
import {
  type BigtableOperationStore,
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { Waiter } from '../../shared/service/wait/waiter.js';
import { testConfig } from '../support/env.js';
import { FakeClock } from '../support/fake-clock.js';
import { call } from '../support/operations-stack.js';

let config: Config;
let store: BigtableOperationStore;
let clock: FakeClock;
let waiter: Waiter;
let server: Server;
let url: string;

beforeAll(async () => {
  // Default 1 s, maximum 10 s; polling only, and no poll before the deadlines (a day away), so
  // the one timer of a wait is its deadline.
  config = testConfig({
    LRO_WAIT_NOTIFICATIONS: 'false',
    LRO_WAIT_TIMEOUT_DEFAULT: '1s',
    LRO_WAIT_TIMEOUT_MAX: '10s',
  });
  await ensureTable(config);
  store = createStore(config);
  clock = new FakeClock(Date.now());
  const day = 86_400_000;
  waiter = new Waiter({
    store,
    clock,
    poll: { initialMs: day, notifiedInitialMs: day, maxMs: day },
  });
  const handler = createApiHandler(() => ({ config, store, waiter }));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      (req as ApiRequest).rawBody = Buffer.concat(chunks);
      void handler(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await store?.close();
  if (config) await deleteTable(config);
});

/** Sends a wait, and answers when its deadline is from the time it started. */
async function deadlineOf(body: unknown) {
  const { operation } = await store.create();
  const started = clock.now();
  const reply = call<Operation>(url, 'POST', `/v1/${operation.name}:wait`, body);
  await clock.timerSet();
  const timeoutMs = (clock.next as number) - started;
  // Not answered before the deadline; answered at it, with the latest state.
  if (timeoutMs > 0) {
    await clock.advance(timeoutMs - 1);
    expect(waiter.active).toBe(1);
  }
  await clock.advance(Math.min(timeoutMs, 1));
  const result = await reply;
  expect(result.status).toBe(200);
  expect(result.body).toEqual({ name: operation.name, done: false });
  // The first read and the one at the deadline; no poll.
  expect(result.headers.get('x-lro-bigtable-reads')).toBe('2');
  expect(result.headers.get('x-lro-safety-net-polls')).toBe('0');
  expect(clock.pending).toBe(0);
  return timeoutMs;
}

describe('the timeout of a wait', () => {
  it('is the default (LRO_WAIT_TIMEOUT_DEFAULT) when none is given', async () => {
    expect(await deadlineOf({})).toBe(1_000);
  });

  it('is the maximum (LRO_WAIT_TIMEOUT_MAX) when a larger one is asked for', async () => {
    expect(await deadlineOf({ timeout: '3600s' })).toBe(10_000);
  });

  it('is the one asked for within the maximum', async () => {
    expect(await deadlineOf({ timeout: '2.5s' })).toBe(2_500);
    expect(await deadlineOf({ timeout: '0s' })).toBe(0);
  });
});
