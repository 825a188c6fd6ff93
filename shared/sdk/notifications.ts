/**
 * Notifications (docs/contracts.md, contract 3): after each change it applies, the service puts the
 * operation's new state as Operation JSON on the notifications topic, with attributes
 * `operation` (the name) and `type` (what happened). Watchers, workers and other consumers listen.
 *
 * Wake-ups (docs/contracts.md, contract 10): what ends an operation (succeeded, failed, cancelled,
 * deadline exceeded) or deletes it is also announced on the wake-up topic as a message with no
 * body, only the attributes `operation` and `type` (and the pipeline timing below). API instances
 * follow that topic for waits: a woken wait reads the row once. Every instance receives every
 * wake-up, so they are kept to one per operation and ~120 bytes (docs/capacity.md).
 */
import { z } from 'zod';
import { parseJsonWithin } from './json-limits.js';
import { log as defaultLog, type Logger } from './log.js';
import { isNotFound, type Messaging, type ReceivedMessage } from './messaging.js';
import { type Operation, OperationNameSchema, OperationSchema } from './model.js';

export const NotificationTypeSchema = z.enum([
  'created',
  'metadata',
  'succeeded',
  'failed',
  'cancelRequested',
  'deleted',
]);
export type NotificationType = z.infer<typeof NotificationTypeSchema>;

export interface Notification {
  type: NotificationType;
  operation: Operation;
  /** When the change went through the pipeline, when known (see `NotificationTiming`). */
  timing?: NotificationTiming;
}

/**
 * Where a notification's time went, as epoch milliseconds: the subscriber stamps when the event's
 * push reached it and when the Bigtable write finished (attributes `lroReceivedAt`,
 * `lroWrittenAt`); Pub/Sub's publishTime says when the notification was published; the listener
 * adds when it received it. The wait response carries them (`x-lro-wake-timing`), so that the
 * benchmark splits a wake-up into stages without parsing logs.
 */
export interface NotificationTiming {
  receivedAt?: number;
  writtenAt?: number;
  publishedAt?: number;
  deliveredAt?: number;
}

export const TIMING_ATTRIBUTES = {
  receivedAt: 'lroReceivedAt',
  writtenAt: 'lroWrittenAt',
} as const;

/** Publishes one notification; resolves with the message ID once Pub/Sub accepted it. */
export function publishNotification(
  messaging: Messaging,
  topic: string,
  notification: Notification,
): Promise<string> {
  const attributes: Record<string, string> = {
    operation: notification.operation.name,
    type: notification.type,
    ...timingAttributes(notification.timing),
  };
  return messaging.publish(topic, notification.operation, { attributes });
}

/** Whether a change ends (or deletes) its operation, so that it is announced as a wake-up too. */
export function endsOperation(notification: Pick<Notification, 'type' | 'operation'>): boolean {
  return notification.type === 'deleted' || notification.operation.done;
}

/** A wake-up: which operation ended and how; no state (read it from the store). */
export interface Wakeup {
  type: NotificationType;
  /** The operation's name. */
  operation: string;
  timing?: NotificationTiming;
}

function timingAttributes(timing: NotificationTiming | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (timing?.receivedAt !== undefined) {
    attributes[TIMING_ATTRIBUTES.receivedAt] = String(timing.receivedAt);
  }
  if (timing?.writtenAt !== undefined) {
    attributes[TIMING_ATTRIBUTES.writtenAt] = String(timing.writtenAt);
  }
  return attributes;
}

/** Publishes one wake-up (no body); resolves with the message ID once Pub/Sub accepted it. */
export function publishWakeup(
  messaging: Messaging,
  topic: string,
  wakeup: Wakeup,
): Promise<string> {
  return messaging.publish(topic, Buffer.alloc(0), {
    attributes: {
      operation: wakeup.operation,
      type: wakeup.type,
      ...timingAttributes(wakeup.timing),
    },
  });
}

/** Where changes are announced: the notifications topic, and the wake-up topic when set. */
export interface AnnounceTopics {
  notifications: string;
  /** Absent: no wake-ups (a deployment whose API does not follow them). */
  wakeups?: string | undefined;
}

/** Wake-up topics found missing by this process (warned about once each). */
const missingWakeupTopics = new Set<string>();

/**
 * Announces a change: the full notification, and a wake-up when the change ends the operation.
 * Both are published at once; the promise rejects when either failed, so that the caller retries
 * the whole announcement (both are idempotent for their readers). One exception: a wake-up topic
 * that does not exist (NOT_FOUND) is warned about once per process and skipped, so that a
 * deployment without it degrades waits to their safety-net polling instead of failing every
 * completion.
 */
export async function announce(
  messaging: Messaging,
  topics: AnnounceTopics,
  notification: Notification,
  logger: Logger = defaultLog,
): Promise<void> {
  const published: Promise<unknown>[] = [
    publishNotification(messaging, topics.notifications, notification),
  ];
  const wakeups = topics.wakeups;
  if (wakeups !== undefined && endsOperation(notification)) {
    published.push(
      publishWakeup(messaging, wakeups, {
        type: notification.type,
        operation: notification.operation.name,
        ...(notification.timing ? { timing: notification.timing } : {}),
      }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
        if (!missingWakeupTopics.has(wakeups)) {
          missingWakeupTopics.add(wakeups);
          logger.warn('the wake-up topic does not exist; waits finish by polling until it does', {
            topic: wakeups,
            operation: notification.operation.name,
          });
        }
      }),
    );
  }
  await Promise.all(published);
}

/** The timing a received notification carries, plus its publish and arrival times. */
export function timingOf(
  message: Pick<ReceivedMessage, 'attributes' | 'publishTime'>,
  deliveredAt: number,
): NotificationTiming {
  const timing: NotificationTiming = { publishedAt: message.publishTime.getTime(), deliveredAt };
  const receivedAt = Number(message.attributes[TIMING_ATTRIBUTES.receivedAt]);
  const writtenAt = Number(message.attributes[TIMING_ATTRIBUTES.writtenAt]);
  if (Number.isFinite(receivedAt) && receivedAt > 0) timing.receivedAt = receivedAt;
  if (Number.isFinite(writtenAt) && writtenAt > 0) timing.writtenAt = writtenAt;
  return timing;
}

/** A timing as a header value: `received=…, written=…, published=…, delivered=…, …`. */
export function formatTiming(timing: NotificationTiming & { respondedAt?: number }): string {
  return Object.entries(timing)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k.replace(/At$/, '')}=${v}`)
    .join(', ');
}

/** The notification in a received message, or undefined when it is not one. */
export function parseNotification(
  message: Pick<ReceivedMessage, 'data' | 'attributes'>,
): Notification | undefined {
  const type = NotificationTypeSchema.safeParse(message.attributes.type);
  if (!type.success) return undefined;
  const json = parseJsonWithin(message.data);
  if (!json.ok) return undefined;
  const operation = OperationSchema.safeParse(json.value);
  if (!operation.success || operation.data.name !== message.attributes.operation) return undefined;
  return { type: type.data, operation: operation.data };
}

/** The wake-up in a received message, or undefined when it is not one (its body is ignored). */
export function parseWakeup(message: Pick<ReceivedMessage, 'attributes'>): Wakeup | undefined {
  const type = NotificationTypeSchema.safeParse(message.attributes.type);
  const name = OperationNameSchema.safeParse(message.attributes.operation);
  if (!type.success || !name.success) return undefined;
  return { type: type.data, operation: name.data };
}
