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
 * - Event identity: an eventId takes effect at most once per operation whatever its payload (the
 *   store records it in the write that applies it), and an event published before its operation
 *   was created (an earlier operation of the same name, deleted since) never applies to it. The
 *   publish time is Pub/Sub's, or the earlier time in the attribute `lroPublishTime`, which a
 *   dead letter keeps across a replay. Such events are acknowledged and logged, never
 *   re-announced.
 * - Every applied change is announced on the notifications topic, and a change that ends the
 *   operation on the wake-up topic too (notifications.ts). When the write applied but the
 *   announcement could not be published, the delivery fails; on redelivery the store reports
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
import { Code, LroError, toLroError, unavailable } from '../../sdk/errors.js';
import {
  decodeEvent,
  eventAttributes,
  type HeartbeatEvent,
  type WorkerEvent,
} from '../../sdk/events.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Operation } from '../../sdk/model.js';
import { announce, type NotificationType } from '../../sdk/notifications.js';
import type { WarmUpStep } from '../runtime/warm-up.js';
import { type HistoryEntry, type HistoryOutcome, historyEntryOf } from '../store/event-history.js';
import type { OperationStore, Outcome, WriteResult } from '../store/store.js';
import { applyHeartbeat } from './heartbeats.js';
import {
  DEAD_LETTER_ATTRIBUTES,
  type EventMessage,
  type HandleResult,
  type IgnoredReason,
  type SubscriberDeps,
} from './messages.js';
import { eventPublishTime, PUBLISH_TIME_ATTRIBUTE } from './publish-time.js';
import { endStrandedOperation } from './stranded.js';
import { countedEmitTime } from './worker-clock.js';

/** Events that change the Operation JSON (a heartbeat does not). */
type ChangeEvent = Exclude<WorkerEvent, HeartbeatEvent>;

// The message types have their own module (messages.ts); they are exported here too, with the
// function that takes them.
export type { EventMessage, HandleResult, IgnoredReason, SubscriberDeps };
export { DEAD_LETTER_ATTRIBUTES };

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
  const publishTime = eventPublishTime(message);
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
      const renewed = await applyHeartbeat(event, deps.store, publishTime, Date.now, delivery);
      if (renewed.outcome === 'ignored') logIgnored(log, fields, event.type, renewed.reason);
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
    written = await write(event, deps.store, publishTime, historyOf(event, delivery));
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
    await deps.failures?.rememberFailure(message.data, error).catch(() => undefined);
    throw error;
  }

  const writtenAt = Date.now();
  const applyLatencyMs = latencySince(message.publishTime, writtenAt);
  const operation = written.operation;
  const notification: NotificationType = event.type;
  let outcome: 'applied' | 'reannounced';
  if (written.applied) {
    outcome = 'applied';
  } else if (written.reason !== 'earlier-operation' && isStoredState(event, operation)) {
    outcome = 'reannounced';
    await remember('DUPLICATE');
  } else {
    const reason = written.reason ?? (operation.done ? 'done' : 'stale');
    logIgnored(log, fields, event.type, reason);
    // DUPLICATE when an event of this eventId was handled before (checked by the same write).
    await remember(
      reason === 'duplicate'
        ? 'DUPLICATE'
        : operation.done || reason === 'earlier-operation'
          ? 'IGNORED'
          : 'STALE',
      { duplicateIfSeen: true },
    );
    return { outcome: 'ignored', reason };
  }

  try {
    await announce(
      deps.messaging,
      deps.topics,
      { type: notification, operation, timing: { receivedAt, writtenAt } },
      log,
    );
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

/** Logs the events ignored for a reason worth a line (not plain late or empty progress). */
function logIgnored(
  log: Logger,
  fields: Record<string, string>,
  type: WorkerEvent['type'],
  reason: IgnoredReason,
) {
  if (reason === 'duplicate') {
    log.info('event ignored: an event with this eventId took effect already', {
      ...fields,
      type,
      reason,
    });
  } else if (reason === 'earlier-operation') {
    log.info(
      'event ignored: published before the operation was created (it was meant for an earlier operation of the same name)',
      { ...fields, type, reason },
    );
  } else if (reason === 'done' && type !== 'metadata' && type !== 'heartbeat') {
    // Typically a worker finishing after its operation was cancelled or timed out.
    log.info('event ignored: the operation had already ended', { ...fields, type, reason });
  }
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
  publishTime: Date | undefined,
  history: HistoryEntry,
): Promise<WriteResult> {
  const identity = {
    eventId: event.eventId,
    ...(publishTime === undefined ? {} : { publishTime }),
  };
  const options = {
    ...identity,
    ...(event.metadata === undefined ? {} : { metadata: event.metadata }),
    history,
  };
  switch (event.type) {
    case 'metadata':
      // Checked by the caller: progress without metadata changes nothing.
      if (event.metadata === undefined) throw new LroError(Code.INTERNAL, 'empty progress event');
      return store.updateMetadata(event.operation, event.metadata, {
        ...identity,
        emitTime: countedEmitTime(event.emitTime, publishTime?.toISOString()),
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
  const published = eventPublishTime(message);
  if (published !== undefined) attributes[PUBLISH_TIME_ATTRIBUTE] = published.toISOString();
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

/**
 * A warm-up step (shared/service/runtime/warm-up.ts): decodes an event of each type, so that the
 * first delivery does not pay for building the schema's parsers. It runs once the other steps'
 * calls are sent, while they wait for their answers.
 */
export function eventDecodingWarmUp(): WarmUpStep {
  return {
    name: 'event decoding',
    run: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      const envelope = {
        version: 1,
        operation: 'operations/warm-up',
        eventId: 'warm-up',
        emitTime: '2026-01-01T00:00:00.000Z',
      } as const;
      const any = { '@type': 'type.googleapis.com/google.protobuf.Empty' };
      const samples: WorkerEvent[] = [
        { ...envelope, type: 'metadata', metadata: any },
        { ...envelope, type: 'heartbeat' },
        { ...envelope, type: 'succeeded', response: any },
        { ...envelope, type: 'failed', error: { code: 2, message: 'warm-up' } },
      ];
      for (const event of samples) {
        const decoded = decodeEvent(Buffer.from(JSON.stringify(event)), eventAttributes(event));
        if (!decoded.ok) throw new Error(`warm-up event not decoded: ${decoded.reason}`);
      }
    },
  };
}
