/**
 * Keeps what reaches the dead-letter topic: a push subscription on that topic delivers every
 * message to the subscriber function, which hands it here instead of applying it. The entry is
 * written before the delivery is acknowledged; a failed write fails the delivery, so Pub/Sub
 * redelivers and nothing given to the store is lost. Redeliveries write the same entry again.
 * Entries the subscription's policy sent whose last error was transient are stored with an
 * automatic-replay time, for the sweeper (dead-letter-replay.ts).
 */

import { toLroError, unavailable } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { EventMessage } from '../events/messages.js';
import { DEAD_LETTER_STORE_SUFFIX } from '../runtime/config.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import {
  autoReplaysOf,
  type DeadLetterEntry,
  deadLetterIdOf,
  operationOf,
  reasonOf,
  sentByPolicy,
} from './record.js';
import { autoReplayTime, isTransient } from './replay.js';

// Suffix of the store subscription on the dead-letter topic (`{dead-letter topic}-store`).
export { DEAD_LETTER_STORE_SUFFIX };

export interface DeadLetterDeps {
  store: Pick<DeadLetterStore, 'put' | 'lastFailure' | 'forgetFailure'>;
  log?: Logger;
  now?: () => number;
}

/**
 * Whether a delivery came from the dead-letter topic: the CloudEvent's source names the topic
 * (the functions framework takes it from the push endpoint's path), or the push body names the
 * store subscription.
 */
export function isDeadLetterDelivery(received: unknown, deadLetterTopic: string): boolean {
  const r = received as {
    source?: unknown;
    data?: { subscription?: unknown };
    subscription?: unknown;
  };
  if (typeof r?.source === 'string' && r.source.endsWith(`/topics/${deadLetterTopic}`)) return true;
  const subscription = r?.data?.subscription ?? r?.subscription;
  return (
    typeof subscription === 'string' &&
    subscription.endsWith(`/subscriptions/${deadLetterTopic}${DEAD_LETTER_STORE_SUFFIX}`)
  );
}

/** Stores one message of the dead-letter topic; throws (failing the delivery) when not stored. */
export async function storeDeadLetter(
  message: EventMessage,
  deps: DeadLetterDeps,
): Promise<DeadLetterEntry> {
  const log = deps.log ?? defaultLog;
  const byPolicy = sentByPolicy(message.attributes);
  let entry: DeadLetterEntry;
  try {
    const lastError = byPolicy ? await deps.store.lastFailure(message.data) : undefined;
    const published = message.publishTime ? Date.parse(message.publishTime) : Number.NaN;
    const time = new Date(Number.isFinite(published) ? published : (deps.now ?? Date.now)());
    entry = {
      id: deadLetterIdOf(time, message.messageId),
      reason: reasonOf(message.attributes, lastError?.message),
      data: message.data,
      attributes: message.attributes,
      deadLetterTime: time,
    };
    const operation = operationOf(message.data, message.attributes);
    if (operation !== undefined) entry.operation = operation;
    // Failed only for transient reasons: the sweeper replays it while its operation runs.
    if (byPolicy && operation !== undefined && isTransient(lastError)) {
      const at = autoReplayTime(time, autoReplaysOf(message.attributes));
      if (at !== undefined) entry.autoReplayAt = at;
    }
    await deps.store.put(entry);
  } catch (err) {
    log.warn('dead letter not stored; failing the delivery so that it is redelivered', {
      messageId: message.messageId,
      error: toLroError(err),
    });
    throw unavailable(`dead letter ${message.messageId} not stored`, err);
  }
  if (byPolicy) {
    // The subscriber logged its own dead letters; the policy's are logged here.
    log.error('event dead-lettered', {
      ...(entry.operation === undefined ? {} : { operation: entry.operation }),
      messageId: message.messageId,
      reason: entry.reason,
      ...(entry.autoReplayAt === undefined
        ? {}
        : { autoReplayTime: entry.autoReplayAt.toISOString() }),
    });
    await deps.store.forgetFailure(message.data).catch(() => undefined);
  }
  log.info('dead letter stored', {
    deadLetter: `deadLetters/${entry.id}`,
    messageId: message.messageId,
    ...(entry.operation === undefined ? {} : { operation: entry.operation }),
  });
  return entry;
}
