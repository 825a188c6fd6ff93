/**
 * One push delivery to the subscriber function, as a CloudEvent: the Pub/Sub message in it is an
 * event (handled by subscriber.ts) or, when it comes from the dead-letter topic's subscription, a
 * dead letter to keep (dead-letters/handler.ts, docs/contracts.md, contract 6: kept, never applied). A
 * delivery that is not a Pub/Sub message at all is logged and acknowledged: there is nothing to
 * retry or dead-letter. The log lines carry the push request's trace.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { type Logger, log } from '../../sdk/log.js';
import { isDeadLetterDelivery, storeDeadLetter } from '../dead-letters/handler.js';
import { leaveFrameworkDomain } from '../http/framework-domain.js';
import { traceFields, withFields } from '../runtime/trace.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { EventMessage, SubscriberDeps } from './messages.js';
import { isRehearsal, rehearsalLog } from './rehearsal.js';
import { eventMessageOf, handleEventMessage } from './subscriber.js';

/** What the subscriber function uses: its deps, the dead-letter store, the project (traces). */
export interface SubscriberServices extends SubscriberDeps {
  projectId: string;
  deadLetters: DeadLetterStore;
}

/** Handles one delivery; `services` is called once it is a Pub/Sub message (built on first use). */
export async function handleDelivery(
  event: CloudEvent<unknown>,
  services: () => SubscriberServices,
): Promise<void> {
  leaveFrameworkDomain();
  const message = eventMessageOf(event);
  if (!message) {
    // Not a Pub/Sub delivery at all: nothing to retry or dead-letter.
    log.error('subscriber received something that is not a Pub/Sub message', {
      eventId: event.id,
      eventType: event.type,
    });
    return;
  }
  const shared = services();
  if (isRehearsal(message)) {
    // The instance's own request before it serves (rehearsal.ts): the same path, unrecorded.
    const { failures: _unrecorded, ...unrecorded } = shared;
    await handleMessage(message, false, unrecorded, rehearsalLog).catch(() => undefined);
    return;
  }
  // The push request's trace (the framework copies its traceparent header onto the event).
  const trace = traceFields(shared.projectId, {
    traceparent: typeof event.traceparent === 'string' ? event.traceparent : undefined,
  });
  const logger = withFields(shared.log ?? log, trace);
  await handleMessage(
    message,
    isDeadLetterDelivery(event, shared.topics.deadLetter),
    shared,
    logger,
  );
}

/**
 * One Pub/Sub message, pushed or pulled (puller.ts): a message of the dead-letter topic is kept
 * (docs/contracts.md, contract 6), never applied; any other is an event to apply. Rejects when the
 * message must be delivered again.
 */
export async function handleMessage(
  message: EventMessage,
  deadLetter: boolean,
  shared: SubscriberServices,
  logger: Logger,
): Promise<void> {
  if (deadLetter) {
    await storeDeadLetter(message, { store: shared.deadLetters, log: logger });
    return;
  }
  await handleEventMessage(message, { ...shared, log: logger });
}
