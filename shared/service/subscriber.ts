/**
 * The subscriber's logic: one Pub/Sub message of the events topic in, at most one store write and
 * one notification out. Exactly-once in effect over at-least-once delivery:
 *
 * - Permanent failures (oversized, not JSON, schema violation, attributes that disagree with the
 *   body) can never succeed: the raw message goes to the dead-letter topic with the reason in its
 *   attributes, an ERROR line carries the message ID, and the delivery is acknowledged.
 * - Transient failures (Bigtable or Pub/Sub unavailable, timeouts) throw, so the delivery fails
 *   and Pub/Sub redelivers. An unknown operation throws too (NOT_FOUND): it may be created a
 *   moment later; the subscription's dead-letter policy ends the retries.
 * - Writes are conditional (store.ts): a duplicate of an applied event, late metadata and
 *   anything after the terminal event change nothing and are acknowledged.
 * - Every applied change is announced on the notifications topic. When the write applied but the
 *   notification could not be published, the delivery fails; on redelivery the store reports
 *   `applied: false`, so "this event's change is the stored state" is checked instead (the
 *   stored outcome, or the running operation's metadata, equals the event's) and the state is
 *   announced again. Notifications are therefore at-least-once: a duplicate event whose content
 *   is the current state re-announces it, which waiters treat like any other notification.
 * - Every event handled for an existing operation goes into its event history (event-history.ts)
 *   with its outcome: in the same write when it applied, by a second write when it changed
 *   nothing (best effort: a failure there does not fail the delivery).
 * - Every announced change is logged at INFO, message `event applied`, with `operation`,
 *   `eventId`, `messageId`, `type`, `outcome` and `applyLatencyMs` (Pub/Sub publishTime → the
 *   change stored): log-based metrics count events and measure the apply latency from it.
 */
import { isDeepStrictEqual } from 'node:util';
import { Code, LroError, toLroError, unavailable } from '../sdk/errors.js';
import { decodeEvent, type HeartbeatEvent, type WorkerEvent } from '../sdk/events.js';
import { log as defaultLog, type Logger } from '../sdk/log.js';
import type { Messaging } from '../sdk/messaging.js';
import type { Operation } from '../sdk/model.js';
import { type NotificationType, publishNotification } from '../sdk/notifications.js';
import { type HistoryEntry, type HistoryOutcome, historyEntryOf } from './event-history.js';
import { applyHeartbeat } from './heartbeats.js';
import type { OperationStore, Outcome, WriteResult } from './store.js';
import { endStrandedOperation } from './stranded.js';
import { countedEmitTime } from './worker-clock.js';

/** Events that change the Operation JSON (a heartbeat does not). */
type ChangeEvent = Exclude<WorkerEvent, HeartbeatEvent>;

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
  topics: { notifications: string; deadLetter: string };
  log?: Logger;
  /** Records why a delivery failed, for the reason of a message the policy dead-letters later. */
  failures?: { rememberFailure(data: Buffer, error: string): Promise<void> };
}

export type HandleResult =
  /** The event changed the operation; the new state was announced. */
  | { outcome: 'applied'; operation: Operation; notification: NotificationType }
  /** A redelivery of an event whose change is already stored: the state was announced again. */
  | { outcome: 'reannounced'; operation: Operation; notification: NotificationType }
  /** A heartbeat renewed the operation (nothing announced: the Operation did not change). */
  | { outcome: 'renewed' }
  /** Nothing to do: a duplicate, late metadata, an event after the end, or empty progress. */
  | { outcome: 'ignored'; reason: 'done' | 'stale' | 'empty' }
  /** A permanent failure: the message was published to the dead-letter topic. */
  | { outcome: 'dead-lettered'; reason: string };

/** Attributes the subscriber adds to a dead-lettered message. */
export const DEAD_LETTER_ATTRIBUTES = {
  reason: 'lroDeadLetterReason',
  messageId: 'lroSourceMessageId',
} as const;

const ATTRIBUTE_VALUE_MAX_BYTES = 1024;

/**
 * Handles one message. Resolves when the message may be acknowledged; rejects (with an
 * LroError) when the delivery must fail so that Pub/Sub redelivers.
 */
export async function handleEventMessage(
  message: EventMessage,
  deps: SubscriberDeps,
): Promise<HandleResult> {
  const log = deps.log ?? defaultLog;
  const receivedAt = Date.now();
  const decoded = decodeEvent(message.data, message.attributes);
  if (!decoded.ok) {
    await deadLetter(message, decoded.reason, deps);
    log.error('event dead-lettered', {
      messageId: message.messageId,
      reason: decoded.reason,
      ...(decoded.operation === undefined ? {} : { operation: decoded.operation }),
    });
    await endStrandedOperation(message, decoded.reason, deps, log);
    return { outcome: 'dead-lettered', reason: decoded.reason };
  }
  const event = decoded.event;
  const fields = {
    operation: event.operation,
    eventId: event.eventId,
    messageId: message.messageId,
  };
  const delivery = { publishTime: message.publishTime, messageId: message.messageId };
  const remember = (outcome: HistoryOutcome, options: { duplicateIfSeen?: boolean } = {}) =>
    deps.store
      .recordHistory(event.operation, historyEntryOf(event, outcome, delivery), options)
      .catch((err: unknown) => {
        log.warn('event history not recorded', { ...fields, error: toLroError(err) });
      });
  if (event.type === 'metadata' && event.metadata === undefined) {
    await remember('IGNORED');
    return { outcome: 'ignored', reason: 'empty' };
  }

  let written: WriteResult;
  try {
    if (event.type === 'heartbeat') {
      const renewed = await applyHeartbeat(event, deps.store, Date.now, delivery);
      if (renewed.outcome === 'renewed') {
        const applyLatencyMs = latencySince(message.publishTime, Date.now());
        log.info('event applied', {
          ...fields,
          type: event.type,
          outcome: renewed.outcome,
          ...(applyLatencyMs === undefined ? {} : { applyLatencyMs }),
        });
      }
      return renewed;
    }
    written = await write(event, deps.store, message.publishTime, historyOf(event, delivery));
  } catch (err) {
    const error = toLroError(err);
    if (error.code === Code.NOT_FOUND) {
      log.warn(
        'event for an unknown operation; failing the delivery so that it is retried',
        fields,
      );
    } else {
      log.warn('event not applied; failing the delivery so that it is redelivered', {
        ...fields,
        error,
      });
    }
    await deps.failures?.rememberFailure(message.data, error.message).catch(() => undefined);
    throw error;
  }

  const writtenAt = Date.now();
  const applyLatencyMs = latencySince(message.publishTime, writtenAt);
  const operation = written.operation;
  const notification: NotificationType = event.type;
  let outcome: 'applied' | 'reannounced';
  if (written.applied) {
    outcome = 'applied';
  } else if (isStoredState(event, operation)) {
    outcome = 'reannounced';
    await remember('DUPLICATE');
  } else {
    if (operation.done && event.type !== 'metadata') {
      // Typically a worker finishing after its operation was cancelled or timed out.
      log.info('event ignored: the operation had already ended', { ...fields, type: event.type });
    }
    // DUPLICATE when an event of this eventId was handled before (checked by the same write).
    await remember(operation.done ? 'IGNORED' : 'STALE', { duplicateIfSeen: true });
    return { outcome: 'ignored', reason: operation.done ? 'done' : 'stale' };
  }

  try {
    await publishNotification(deps.messaging, deps.topics.notifications, {
      type: notification,
      operation,
      timing: { receivedAt, writtenAt },
    });
  } catch (err) {
    log.warn('change applied but not announced; failing the delivery to announce it again', {
      ...fields,
      error: toLroError(err),
    });
    throw unavailable(`notification for ${event.operation} not published`, err);
  }
  log.info('event applied', {
    ...fields,
    type: event.type,
    outcome,
    ...(applyLatencyMs === undefined ? {} : { applyLatencyMs }),
    ...(event.type === 'failed' ? { code: event.error.code } : {}),
  });
  return { outcome, operation, notification };
}

/** Milliseconds from a Pub/Sub publishTime (RFC 3339) to `now`; undefined when absent or bad. */
function latencySince(publishTime: string | undefined, now: number): number | undefined {
  if (publishTime === undefined) return undefined;
  const at = Date.parse(publishTime);
  return Number.isNaN(at) ? undefined : Math.max(0, now - at);
}

/**
 * The history entry that the write of a change event carries (recorded only if it applies):
 * CLOCK_CORRECTED when its emitTime was too far ahead to count as given.
 */
function historyOf(
  event: ChangeEvent,
  delivery: { publishTime?: string | undefined; messageId: string },
): HistoryEntry {
  const counted = countedEmitTime(event.emitTime, delivery.publishTime);
  return event.type === 'metadata' && counted.getTime() !== Date.parse(event.emitTime)
    ? historyEntryOf(event, 'CLOCK_CORRECTED', { ...delivery, countedTime: counted })
    : historyEntryOf(event, 'APPLIED', delivery);
}

function write(
  event: ChangeEvent,
  store: OperationStore,
  publishTime: string | undefined,
  history: HistoryEntry,
): Promise<WriteResult> {
  const options =
    event.metadata === undefined ? { history } : { metadata: event.metadata, history };
  switch (event.type) {
    case 'metadata':
      // Checked by the caller: progress without metadata changes nothing.
      if (event.metadata === undefined) throw new LroError(Code.INTERNAL, 'empty progress event');
      return store.updateMetadata(event.operation, event.metadata, {
        emitTime: countedEmitTime(event.emitTime, publishTime),
        eventId: event.eventId,
        history,
      });
    case 'succeeded': {
      const outcome: Outcome = event.response === undefined ? {} : { response: event.response };
      return store.complete(event.operation, outcome, options);
    }
    case 'failed':
      return store.complete(event.operation, { error: event.error }, options);
  }
}

/** Whether the stored operation is what applying this event produced (for re-announcing). */
function isStoredState(event: ChangeEvent, operation: Operation): boolean {
  const sameMetadata =
    event.metadata === undefined || isDeepStrictEqual(event.metadata, operation.metadata);
  switch (event.type) {
    case 'metadata':
      return !operation.done && sameMetadata;
    case 'succeeded':
      return (
        operation.done &&
        operation.error === undefined &&
        isDeepStrictEqual(event.response, operation.response) &&
        sameMetadata
      );
    case 'failed':
      return (
        operation.done &&
        operation.error !== undefined &&
        isDeepStrictEqual(normalizeStatus(event.error), normalizeStatus(operation.error)) &&
        sameMetadata
      );
  }
}

function normalizeStatus(status: {
  code: number;
  message?: string | undefined;
  details?: unknown[] | undefined;
}) {
  return { code: status.code, message: status.message ?? '', details: status.details ?? [] };
}

/** Publishes the raw message to the dead-letter topic, the reason in its attributes. */
async function deadLetter(message: EventMessage, reason: string, deps: SubscriberDeps) {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.attributes)) {
    if (!key.startsWith('goog')) attributes[key] = value;
  }
  attributes[DEAD_LETTER_ATTRIBUTES.reason] = truncateBytes(reason, ATTRIBUTE_VALUE_MAX_BYTES);
  attributes[DEAD_LETTER_ATTRIBUTES.messageId] = message.messageId;
  try {
    await deps.messaging.publish(deps.topics.deadLetter, message.data, { attributes });
  } catch (err) {
    throw unavailable(`dead-letter topic unavailable for message ${message.messageId}`, err);
  }
}

function truncateBytes(text: string, maxBytes: number): string {
  let result = text;
  while (Buffer.byteLength(result) > maxBytes) result = result.slice(0, -16);
  return result;
}

/**
 * The Pub/Sub message in what a CloudEvent function receives: the `data` of an Eventarc
 * `google.cloud.pubsub.topic.v1.messagePublished` event (`{message, subscription}`, which the
 * functions framework also produces from a raw push body), or a raw push body that the framework
 * left alone (it converts only messages with non-empty data). Undefined when it is neither.
 */
export function eventMessageOf(received: unknown): EventMessage | undefined {
  const candidates = [
    (received as { data?: { message?: unknown } } | undefined)?.data?.message,
    (received as { message?: unknown } | undefined)?.message,
  ];
  for (const candidate of candidates) {
    if (typeof candidate !== 'object' || candidate === null) continue;
    const m = candidate as Record<string, unknown>;
    const messageId = m.messageId ?? m.message_id;
    if (typeof messageId !== 'string' || messageId === '') continue;
    const attributes: Record<string, string> = {};
    if (typeof m.attributes === 'object' && m.attributes !== null) {
      for (const [key, value] of Object.entries(m.attributes)) {
        if (typeof value === 'string') attributes[key] = value;
      }
    }
    const data = typeof m.data === 'string' ? Buffer.from(m.data, 'base64') : Buffer.alloc(0);
    const publishTime = m.publishTime ?? m.publish_time;
    return typeof publishTime === 'string'
      ? { data, attributes, messageId, publishTime }
      : { data, attributes, messageId };
  }
  return undefined;
}
