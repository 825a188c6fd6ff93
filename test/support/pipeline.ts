/**
 * Helpers for tests of the event pipeline: raw Pub/Sub push bodies posted to the subscriber as a
 * push subscription does, waiting for an operation to end, and shuffling.
 */
import { randomUUID } from 'node:crypto';
import type { Message } from '@google-cloud/pubsub';
import type { Messaging, ReceivedMessage } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { type Notification, parseNotification } from '../../shared/sdk/notifications.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { uniqueSuffix } from './env.js';
import { until } from './until.js';

/** A raw Pub/Sub push body, as a push subscription posts it. */
export function pushBody(
  data: Buffer | string,
  attributes: Record<string, string>,
  messageId: string = randomUUID(),
  subscription = 'projects/p/subscriptions/direct',
) {
  return {
    message: {
      data: Buffer.from(data).toString('base64'),
      attributes,
      messageId,
      publishTime: new Date().toISOString(),
    },
    subscription,
  };
}

/** Posts a push body to `endpoint` (the subscriber's push endpoint). */
export function postPush(endpoint: string, body: unknown): Promise<Response> {
  return fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The operation once the store says it is done. */
export async function doneOperation(
  store: Pick<OperationStore, 'get'>,
  name: string,
  timeoutMs = 15_000,
): Promise<Operation> {
  await until(async () => (await store.get(name)).operation.done, timeoutMs, `${name} done`);
  return (await store.get(name)).operation;
}

/** A copy of `items` in random order. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A response payload for a succeeded event. */
export const result = (value: string) => ({ '@type': 'type.googleapis.com/test.Result', value });

export interface TopicCollector {
  /** Every notification received so far, in arrival order. */
  notifications: Notification[];
  /** Every message received so far (notifications and others), in arrival order. */
  messages: ReceivedMessage[];
  /**
   * Publishes a marker message on the topic and resolves once it arrived: everything published
   * on the topic before the call has arrived by then (one stream; the emulator delivers a
   * subscription's messages in publish order).
   */
  settle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A new pull subscription on `topic` whose messages are collected, read on one stream. */
export async function collectTopic(messaging: Messaging, topic: string): Promise<TopicCollector> {
  const name = `collect-${uniqueSuffix()}`;
  await messaging.ensurePullSubscription(name, topic);
  const notifications: Notification[] = [];
  const messages: ReceivedMessage[] = [];
  const subscription = messaging.pubsub.subscription(name, {
    streamingOptions: { maxStreams: 1 },
    flowControl: { maxMessages: 1000, allowExcessMessages: false },
  });
  subscription.on('message', (m: Message) => {
    m.ack();
    const message: ReceivedMessage = {
      id: m.id,
      data: m.data,
      attributes: m.attributes ?? {},
      publishTime: new Date(m.publishTime.getTime()),
      ack: () => m.ack(),
      nack: () => m.nack(),
    };
    messages.push(message);
    const notification = parseNotification(message);
    if (notification) notifications.push(notification);
  });
  return {
    notifications,
    messages,
    async settle(timeoutMs = 30_000) {
      const marker = randomUUID();
      await messaging.publish(topic, Buffer.from(marker), { attributes: { marker } });
      await until(
        () => messages.some((m) => m.attributes.marker === marker),
        timeoutMs,
        `the marker on ${topic}`,
      );
    },
    async close() {
      subscription.removeAllListeners('message');
      await subscription.close();
      await messaging.deleteSubscription(name);
    },
  };
}
