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
}

/** Publishes one notification; resolves with the message ID once Pub/Sub accepted it. */
export function publishNotification(
  messaging: Messaging,
  topic: string,
  notification: Notification,
): Promise<string> {
  return messaging.publish(topic, notification.operation, {
    attributes: { operation: notification.operation.name, type: notification.type },
  });
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
