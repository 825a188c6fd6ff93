/**
 * A complete event pipeline for a test: unique table and topics on the run's emulators, the
 * subscriber under the functions framework, the push subscription to it, a pull subscription on
 * the notifications topic whose messages are collected, and clean-up of exactly those.
 */
import { randomUUID } from 'node:crypto';
import {
  type ProvisionedStack,
  provisionStack,
  teardownStack,
} from '../../shared/local/provision.js';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import { type Listener, Messaging, type ReceivedMessage } from '../../shared/sdk/messaging.js';
import { type Notification, parseNotification } from '../../shared/sdk/notifications.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { createStore } from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv } from './env.js';
import { type RunningFunction, startFunction } from './functions.js';
import { until } from './until.js';

export { until } from './until.js';

export interface EventStack {
  env: Record<string, string>;
  config: Config;
  store: OperationStore;
  messaging: Messaging;
  subscriber: RunningFunction;
  stack: ProvisionedStack;
  /** Every notification received so far, in arrival order. */
  notifications: Notification[];
  /** Publishes an event as a worker would (attributes and ordering key set). */
  publishEvent(event: WorkerEventInput): Promise<string>;
  /** Pulls what reached the dead-letter topic until `count` messages arrived (or the deadline). */
  readDeadLetters(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

export interface EventStackOptions {
  maxDeliveryAttempts?: number;
  minimumBackoffSeconds?: number;
  maximumBackoffSeconds?: number;
  messageOrdering?: boolean;
}

export async function startEventStack(options: EventStackOptions = {}): Promise<EventStack> {
  const env = testEnv();
  const config = loadConfig(env);
  const messaging = new Messaging(config);
  const subscriber = await startFunction('subscriber', env);
  const stack = await provisionStack(config, {
    subscriberUrl: subscriber.url,
    messaging,
    ...options,
  });
  const store = createStore(config);
  const notificationsSubscription = `${config.topics.notifications}-test`;
  await messaging.ensurePullSubscription(notificationsSubscription, config.topics.notifications);
  const notifications: Notification[] = [];
  const listener: Listener = messaging.listen(notificationsSubscription, (message) => {
    message.ack();
    const notification = parseNotification(message);
    if (notification) notifications.push(notification);
  });

  const publishEvent = (event: WorkerEventInput) =>
    messaging.publish(config.topics.events, event, {
      attributes: { operation: event.operation, type: event.type },
      orderingKey: event.operation,
    });

  const readDeadLetters = async (count: number, timeoutMs = 20_000) => {
    const received: ReceivedMessage[] = [];
    const dlq = messaging.listen(stack.deadLetterSubscription, (message) => {
      message.ack();
      received.push(message);
    });
    try {
      await until(() => received.length >= count, timeoutMs, 'dead letters');
    } finally {
      await dlq.close();
    }
    return received;
  };

  return {
    env,
    config,
    store,
    messaging,
    subscriber,
    stack,
    notifications,
    publishEvent,
    readDeadLetters,
    close: async () => {
      await listener.close();
      await subscriber.stop();
      await messaging.deleteSubscription(notificationsSubscription);
      await teardownStack(config, { messaging });
      await store.close();
      await messaging.close();
    },
  };
}

/** A well-formed event with a fresh ID and the current time. */
export function event<T extends WorkerEventInput['type']>(
  operation: string,
  type: T,
  fields: Omit<
    Extract<WorkerEventInput, { type: T }>,
    'operation' | 'type' | 'eventId' | 'emitTime'
  > &
    Partial<Pick<WorkerEventInput, 'eventId' | 'emitTime'>>,
): WorkerEventInput {
  return {
    operation,
    type,
    eventId: randomUUID(),
    emitTime: new Date().toISOString(),
    ...fields,
  } as WorkerEventInput;
}

export function progress(step: number) {
  return { '@type': 'type.googleapis.com/test.Progress', step };
}
