/**
 * A wait registers for its operation's wake-ups before its first read: the operations function
 * reaches Bigtable through a proxy that holds Bigtable's replies, so the wait's first read is
 * answered (the operation runs) but the answer is held; meanwhile the operation ends and its
 * wake-up is published, as the subscriber does. Only a wait that was listening before that read
 * hears the wake-up; the safety-net poll is an hour away, so a wait that registered after its
 * read would only end at its timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messaging } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { announce } from '../../shared/sdk/notifications.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';
import { result } from '../support/pipeline.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { until } from '../support/until.js';

let config: Config;
let store: OperationStore;
let messaging: Messaging;
let proxy: TcpProxy;
let fn: RunningFunction;

beforeAll(async () => {
  const env = testEnv({ LRO_WAIT_SAFETY_POLL: '3600s' });
  config = loadConfig(env);
  messaging = new Messaging(config);
  await Promise.all([
    ensureTable(config),
    messaging.ensureTopic(config.topics.notifications),
    messaging.ensureTopic(config.topics.wakeups),
  ]);
  store = createStore(config);
  proxy = await startTcpProxy(env.BIGTABLE_EMULATOR_HOST as string);
  fn = await startFunction('operations', { ...env, BIGTABLE_EMULATOR_HOST: proxy.host });
});

afterAll(async () => {
  proxy?.resume();
  await fn?.stop();
  await proxy?.stop();
  await store?.close();
  await messaging?.deleteTopic(config.topics.notifications);
  await messaging?.deleteTopic(config.topics.wakeups);
  await messaging?.close();
  await deleteTable(config);
});

describe('a wait whose first read is answered late', () => {
  it('hears a completion announced while that read was held, through its wake-up', async () => {
    // A first wait makes the instance's wake-up subscription and Bigtable channel exist.
    const warm = (await store.create()).operation.name;
    expect((await call(fn.url, 'POST', `/v1/${warm}:wait`, { timeout: '0s' })).status).toBe(200);

    const { operation } = await store.create();
    proxy.pauseReplies();
    let reply: ReturnType<typeof call<Operation>> | undefined;
    try {
      reply = call<Operation>(fn.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '120s' });
      // Bigtable answered the wait's first read (the operation runs); the answer is held.
      await until(() => proxy.heldReplyBytes() > 0, 60_000, 'the first read answered');
      // The subscriber's part: the row first, then the announcement and its wake-up.
      const { operation: ended } = await store.complete(operation.name, {
        response: result('done'),
      });
      await announce(
        messaging,
        { notifications: config.topics.notifications, wakeups: config.topics.wakeups },
        { type: 'succeeded', operation: ended },
      );
      // The wake-up's read goes out too (its reply held with the first one).
      const heldBefore = proxy.heldReplyBytes();
      await until(() => proxy.heldReplyBytes() > heldBefore, 30_000, 'the woken read answered');
    } finally {
      proxy.resume();
    }
    const answered = await reply;
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(answered.body).toEqual({
      name: operation.name,
      done: true,
      response: result('done'),
    });
    // Woken by the wake-up (its timing), read twice (the held first read and the woken one),
    // and never by the safety net.
    expect(answered.headers.get('x-lro-wake-timing')).toMatch(/\S/);
    expect(answered.headers.get('x-lro-safety-net-polls')).toBe('0');
    expect(answered.headers.get('x-lro-bigtable-reads')).toBe('2');
  });
});
