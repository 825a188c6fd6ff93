/**
 * Fault: Pub/Sub stalls (a TCP proxy between the API and the emulator holds every byte, with the
 * connections open) while callers cancel and delete operations. The API answers each request once
 * its change is in Bigtable, without waiting for Pub/Sub; the announcements (cancelRequested,
 * deleted) go out in the background once Pub/Sub answers again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messaging } from '../../shared/sdk/messaging.js';
import { type Notification, parseNotification } from '../../shared/sdk/notifications.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv, uniqueSuffix } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { api, createOperation, until } from './support.js';

/**
 * Longer than an answer takes with Pub/Sub out of the way (milliseconds), shorter than the
 * client library's publish retry deadline (about 60 s), which an answer that waited for the
 * announcement would take.
 */
const ANSWER_BOUND_MS = 25_000;

let proxy: TcpProxy;
let config: Config;
let messaging: Messaging;
let store: OperationStore;
let fn: RunningFunction;
const collectorName = `collector-${uniqueSuffix()}`;
const received: Notification[] = [];
let listener: { close(): Promise<void> } | undefined;

beforeAll(async () => {
  // Waits poll Bigtable only, so that the API uses Pub/Sub for its announcements alone.
  const env = testEnv({ LRO_WAIT_NOTIFICATIONS: 'false' });
  config = loadConfig(env);
  messaging = new Messaging(config);
  store = createStore(config);
  await Promise.all([ensureTable(config), messaging.ensureTopic(config.topics.notifications)]);
  await messaging.ensurePullSubscription(collectorName, config.topics.notifications);
  listener = messaging.listen(collectorName, (message) => {
    message.ack();
    const notification = parseNotification(message);
    if (notification) received.push(notification);
  });
  proxy = await startTcpProxy(env.PUBSUB_EMULATOR_HOST as string);
  fn = await startFunction('operations', { ...env, PUBSUB_EMULATOR_HOST: proxy.host });
});

afterAll(async () => {
  proxy?.resume();
  await fn?.stop();
  await listener?.close();
  await messaging?.deleteSubscription(collectorName).catch(() => undefined);
  await messaging?.deleteTopic(config.topics.notifications).catch(() => undefined);
  await proxy?.stop();
  await store?.close();
  await messaging?.close();
  await deleteTable(config).catch(() => undefined);
});

const announced = (type: string, name: string) =>
  received.some((n) => n.type === type && n.operation.name === name);

describe('Pub/Sub stalled', () => {
  it('cancel and delete answer once the change is stored, and announce it later', async () => {
    const cancelled = (await createOperation(fn.url)).name;
    const deleted = (await createOperation(fn.url)).name;
    // The API's publisher is connected through the proxy: its creations were announced.
    await until(
      () => announced('created', cancelled) && announced('created', deleted),
      30_000,
      'creations announced',
    );

    proxy.pause();
    const held = proxy.forwardedBytes();
    const cancel = await api(fn.url, 'POST', `/v1/${cancelled}:cancel`, {}, ANSWER_BOUND_MS);
    expect(cancel.status, cancel.text).toBe(200);
    expect(cancel.json).toEqual({});
    const remove = await api(fn.url, 'DELETE', `/v1/${deleted}`, undefined, ANSWER_BOUND_MS);
    expect(remove.status, remove.text).toBe(200);
    expect(remove.json).toEqual({});
    // Answered while Pub/Sub heard nothing, with the changes durable in Bigtable.
    expect(proxy.forwardedBytes()).toBe(held);
    expect(announced('cancelRequested', cancelled)).toBe(false);
    expect((await store.get(cancelled)).cancelRequestTime).toBeInstanceOf(Date);
    await expect(store.get(deleted)).rejects.toMatchObject({ code: 5 });

    proxy.resume();
    await until(
      () => announced('cancelRequested', cancelled) && announced('deleted', deleted),
      120_000,
      'cancellation and deletion announced once Pub/Sub answers',
    );
  });
});
