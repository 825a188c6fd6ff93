/**
 * The Pub/Sub and Bigtable resources of one stack, created idempotently: the table, the events,
 * notifications, wake-up and dead-letter topics, the push subscription that delivers events to the
 * subscriber function (dead-letter and retry policies, no message ordering), and a pull
 * subscription on the dead-letter topic so that dead-lettered messages are kept until someone
 * reads them, and a push subscription of the dead-letter topic to the subscriber, which stores
 * each message for the API's /v1/deadLetters. `npm start` and the tests use it; in the cloud,
 * Terraform declares the same.
 */

import { Messaging } from '../sdk/messaging.js';
import { DEAD_LETTER_STORE_SUFFIX } from '../service/dead-letters/handler.js';
import type { Config } from '../service/runtime/config.js';
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
    eventsSubscription: `${config.topics.events}-subscriber`,
    deadLetterSubscription: `${config.topics.deadLetter}-keep`,
    deadLetterStoreSubscription: `${config.topics.deadLetter}${DEAD_LETTER_STORE_SUFFIX}`,
  };
}

export interface ProvisionOptions {
  /** Base URL of the subscriber function, e.g. http://127.0.0.1:8081. */
  subscriberUrl: string;
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
  const pushEndpoint = pushEndpointOf(config, options.subscriberUrl);
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
        pushEndpoint: pushEndpointOf(
          {
            projectId: config.projectId,
            topics: { ...config.topics, events: config.topics.deadLetter },
          },
          options.subscriberUrl,
        ),
        minimumBackoffSeconds: options.minimumBackoffSeconds ?? 1,
        maximumBackoffSeconds: options.maximumBackoffSeconds ?? 60,
      },
    );
    await messaging.ensurePushSubscription(names.eventsSubscription, config.topics.events, {
      pushEndpoint,
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
