/**
 * The Pub/Sub and Bigtable resources of one stack, created idempotently: the table, the events,
 * notifications, wake-up and dead-letter topics, the push subscription that delivers events to the
 * subscriber function (dead-letter and retry policies, no message ordering), and a pull
 * subscription on the dead-letter topic so that dead-lettered messages are kept until someone
 * reads them, and a push subscription of the dead-letter topic to the subscriber, which stores
 * each message for the API's /v1/deadLetters. With `delivery: 'pull'` the two subscriptions to
 * the subscriber are pull subscriptions with the same policies, for the pull subscriber. `npm start` and the tests use it; in the cloud,
 * Terraform declares the same.
 */

import { Messaging } from '../sdk/messaging.js';
import { DEAD_LETTER_STORE_SUFFIX } from '../service/dead-letters/handler.js';
import { type Config, EVENTS_SUBSCRIPTION_SUFFIX } from '../service/runtime/config.js';
import { deleteTable, ensureTable } from '../service/store/bigtable/operation-store.js';

export interface StackNames {
  /** Push subscription of the events topic to the subscriber function. */
  eventsSubscription: string;
  /** Pull subscription that keeps what reaches the dead-letter topic. */
  deadLetterSubscription: string;
  /** Push subscription of the dead-letter topic to the subscriber, which stores each message. */
  deadLetterStoreSubscription: string;
}

export function stackNames(config: Pick<Config, 'topics'>): StackNames {
  return {
    eventsSubscription: `${config.topics.events}${EVENTS_SUBSCRIPTION_SUFFIX}`,
    deadLetterSubscription: `${config.topics.deadLetter}-keep`,
    deadLetterStoreSubscription: `${config.topics.deadLetter}${DEAD_LETTER_STORE_SUFFIX}`,
  };
}

export interface ProvisionOptions {
  /**
   * How events and dead letters reach the subscriber (default push): `push`, to the subscriber
   * function at `subscriberUrl`; `pull`, the two subscriptions are pull subscriptions with the
   * same policies, read by the pull subscriber (`subscriberPull`).
   */
  delivery?: 'push' | 'pull';
  /** Base URL of the subscriber function, e.g. http://127.0.0.1:8081; required for push. */
  subscriberUrl?: string;
  /** Deliveries of one message before Pub/Sub dead-letters it (5 to 100; default 5). */
  maxDeliveryAttempts?: number;
  /** Redelivery backoff bounds after a failed delivery (defaults 1 s and 60 s). */
  minimumBackoffSeconds?: number;
  maximumBackoffSeconds?: number;
  /** How long a delivery may take before Pub/Sub redelivers (default 60 s). */
  ackDeadlineSeconds?: number;
  /**
   * Deliver the events of one operation in publish order (default false). The subscriber does not
   * depend on order (newest metadata by emitTime, terminal once), while ordering lets one failing
   * event hold back every later event of its operation until it is dead-lettered; with the
   * emulator, an ordered subscription with a dead-letter policy stops pushing altogether.
   */
  messageOrdering?: boolean;
  /** A Messaging to reuse; one is created and closed otherwise. */
  messaging?: Messaging;
}

export interface ProvisionedStack extends StackNames {
  /** The events subscription's push endpoint; empty with pull delivery. */
  pushEndpoint: string;
}

/**
 * The push endpoint for a subscriber URL. A URL without a path gets
 * `/projects/{project}/topics/{topic}`, from which the functions framework reads the topic
 * when it converts a raw push body into a CloudEvent.
 */
export function pushEndpointOf(config: Pick<Config, 'projectId' | 'topics'>, url: string): string {
  const parsed = new URL(url);
  if (parsed.pathname === '/' || parsed.pathname === '') {
    parsed.pathname = `/projects/${config.projectId}/topics/${config.topics.events}`;
  }
  return parsed.toString();
}

export async function provisionStack(
  config: Config,
  options: ProvisionOptions,
): Promise<ProvisionedStack> {
  const messaging = options.messaging ?? new Messaging(config);
  const names = stackNames(config);
  const pull = options.delivery === 'pull';
  if (!pull && options.subscriberUrl === undefined) {
    throw new Error('provisionStack: subscriberUrl is required with push delivery');
  }
  const subscriberUrl = options.subscriberUrl ?? '';
  const pushEndpoint = pull ? '' : pushEndpointOf(config, subscriberUrl);
  try {
    await Promise.all([
      ensureTable(config),
      messaging.ensureTopic(config.topics.events),
      messaging.ensureTopic(config.topics.notifications),
      messaging.ensureTopic(config.topics.wakeups),
      messaging.ensureTopic(config.topics.deadLetter),
    ]);
    // The keeping subscription first: only messages published after it exists are kept.
    await messaging.ensurePullSubscription(names.deadLetterSubscription, config.topics.deadLetter, {
      ackDeadlineSeconds: 60,
      messageRetentionSeconds: 7 * 24 * 3600,
    });
    await messaging.ensurePushSubscription(
      names.deadLetterStoreSubscription,
      config.topics.deadLetter,
      {
        pushEndpoint: pull
          ? undefined
          : pushEndpointOf(
              {
                projectId: config.projectId,
                topics: { ...config.topics, events: config.topics.deadLetter },
              },
              subscriberUrl,
            ),
        minimumBackoffSeconds: options.minimumBackoffSeconds ?? 1,
        maximumBackoffSeconds: options.maximumBackoffSeconds ?? 60,
      },
    );
    await messaging.ensurePushSubscription(names.eventsSubscription, config.topics.events, {
      pushEndpoint: pull ? undefined : pushEndpoint,
      deadLetterTopic: config.topics.deadLetter,
      maxDeliveryAttempts: options.maxDeliveryAttempts ?? 5,
      minimumBackoffSeconds: options.minimumBackoffSeconds ?? 1,
      maximumBackoffSeconds: options.maximumBackoffSeconds ?? 60,
      ackDeadlineSeconds: options.ackDeadlineSeconds ?? 60,
      enableMessageOrdering: options.messageOrdering ?? false,
    });
  } finally {
    if (!options.messaging) await messaging.close();
  }
  return { ...names, pushEndpoint };
}

export interface TeardownOptions {
  /** Also delete the table (default true). */
  table?: boolean;
  messaging?: Messaging;
}

/** Deletes what provisionStack made for this config (absent resources are fine). */
export async function teardownStack(config: Config, options: TeardownOptions = {}): Promise<void> {
  const messaging = options.messaging ?? new Messaging(config);
  const names = stackNames(config);
  try {
    await Promise.all([
      messaging.deleteSubscription(names.eventsSubscription),
      messaging.deleteSubscription(names.deadLetterSubscription),
      messaging.deleteSubscription(names.deadLetterStoreSubscription),
    ]);
    await Promise.all([
      messaging.deleteTopic(config.topics.events),
      messaging.deleteTopic(config.topics.notifications),
      messaging.deleteTopic(config.topics.wakeups),
      messaging.deleteTopic(config.topics.deadLetter),
      options.table === false ? Promise.resolve() : deleteTable(config),
    ]);
  } finally {
    if (!options.messaging) await messaging.close();
  }
}
