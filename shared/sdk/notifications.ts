/**
 * Notifications (public contract 3): after each change it applies, the service publishes the
 * operation's new state as Operation JSON on the notifications topic, with attributes
 * `operation` (the name) and `type` (what happened). Waiters, watchers and workers listen.
 */
import { z } from 'zod';
import { parseJsonWithin } from './json-limits.js';
import type { Messaging, ReceivedMessage } from './messaging.js';
import { type Operation, OperationSchema } from './model.js';

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
  };
  const timing = notification.timing;
  if (timing?.receivedAt !== undefined) {
    attributes[TIMING_ATTRIBUTES.receivedAt] = String(timing.receivedAt);
  }
  if (timing?.writtenAt !== undefined) {
    attributes[TIMING_ATTRIBUTES.writtenAt] = String(timing.writtenAt);
  }
  return messaging.publish(topic, notification.operation, { attributes });
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
