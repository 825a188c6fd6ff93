/**
 * When an event was published, for event identity: an event published before its operation was
 * created belongs to an earlier operation of the same name and never applies to it (store.ts).
 *
 * Pub/Sub stamps every message with its publishTime (Pub/Sub's clock, not the worker's). A replay
 * publishes the event again, with a new publishTime, so the first one travels with it in the
 * attribute `lroPublishTime`: the subscriber adds it to what it dead-letters, and a replay takes
 * it (or, for a message the subscription's dead-letter policy moved, Pub/Sub's
 * `CloudPubSubDeadLetterSourceTopicPublishTime`). The attribute can make an event older, never
 * newer than Pub/Sub says it is: the earlier of the two counts.
 */
import type { EventMessage } from './messages.js';

/** The time (RFC 3339) an event was first published, kept across dead-lettering and replay. */
export const PUBLISH_TIME_ATTRIBUTE = 'lroPublishTime';

/** What Pub/Sub's dead-letter policy records of the message's publish time on its source topic. */
export const POLICY_PUBLISH_TIME_ATTRIBUTE = 'CloudPubSubDeadLetterSourceTopicPublishTime';

/** The earliest of some RFC 3339 times; undefined when none is a valid time. */
export function earliest(...texts: (string | undefined)[]): Date | undefined {
  const times = texts
    .map((text) => (text === undefined ? Number.NaN : Date.parse(text)))
    .filter((ms) => Number.isFinite(ms));
  return times.length === 0 ? undefined : new Date(Math.min(...times));
}

/**
 * When the event in a message was published: the earlier of Pub/Sub's publishTime and the
 * `lroPublishTime` attribute. Undefined when neither is a valid time.
 */
export function eventPublishTime(
  message: Pick<EventMessage, 'attributes' | 'publishTime'>,
): Date | undefined {
  return earliest(message.publishTime, message.attributes[PUBLISH_TIME_ATTRIBUTE]);
}
