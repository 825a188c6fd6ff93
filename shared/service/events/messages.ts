/**
 * What the subscriber takes and gives: one Pub/Sub message as the push endpoint receives it, the
 * services it uses, what handling a message did, and the attributes it adds to what it
 * dead-letters. Its satellites (heartbeats, stranded operations, publish times) and the dead
 * letters speak these types without importing the subscriber itself.
 */
import type { Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import type { Operation } from '../../sdk/model.js';
import type { AnnounceTopics, NotificationType } from '../../sdk/notifications.js';
import type { NotAppliedReason, OperationStore } from '../store/store.js';

/** Why an event changed nothing. */
export type IgnoredReason = 'done' | 'stale' | 'empty' | NotAppliedReason;

/** One Pub/Sub message as the push endpoint receives it. */
export interface EventMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string;
  publishTime?: string;
}

export interface SubscriberDeps {
  store: OperationStore;
  messaging: Messaging;
  /** Where changes are announced (wake-ups too when `wakeups` is set), and dead letters go. */
  topics: AnnounceTopics & { deadLetter: string };
  log?: Logger;
  /** Records why a delivery failed, for the reason of a message the policy dead-letters later. */
  failures?: {
    rememberFailure(data: Buffer, error: { code: number; message: string }): Promise<void>;
  };
}

export type HandleResult =
  /** The event changed the operation; the new state was announced. */
  | { outcome: 'applied'; operation: Operation; notification: NotificationType }
  /** A redelivery of an event whose change is already stored: the state was announced again. */
  | { outcome: 'reannounced'; operation: Operation; notification: NotificationType }
  /** A heartbeat renewed the operation (nothing announced: the Operation did not change). */
  | { outcome: 'renewed' }
  /**
   * Nothing to do: an event after the end, late metadata, empty progress, an eventId that took
   * effect already, or an event published before its operation was created.
   */
  | { outcome: 'ignored'; reason: IgnoredReason }
  /** A permanent failure: the message was published to the dead-letter topic. */
  | { outcome: 'dead-lettered'; reason: string };

/** Attributes the subscriber adds to a dead-lettered message. */
export const DEAD_LETTER_ATTRIBUTES = {
  reason: 'lroDeadLetterReason',
  messageId: 'lroSourceMessageId',
} as const;
