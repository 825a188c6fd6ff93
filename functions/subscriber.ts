/**
 * The subscriber function: a CloudEvent function for `google.cloud.pubsub.topic.v1.messagePublished`
 * (an Eventarc trigger on the events topic, or a plain push subscription, whose body the functions
 * framework converts). All logic is in shared/service/events/subscriber.ts; this file wires it once per instance.
 */
import { type CloudEvent, cloudEvent } from '@google-cloud/functions-framework';
import { log } from '../shared/sdk/log.js';
import { isDeadLetterDelivery, storeDeadLetter } from '../shared/service/dead-letters/handler.js';
import {
  openSubscriberServices,
  type SubscriberServices,
} from '../shared/service/events/services.js';
import { eventMessageOf, handleEventMessage } from '../shared/service/events/subscriber.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { leaveFrameworkDomain } from '../shared/service/http/framework-domain.js';
import { installPushGuard } from '../shared/service/http/push-guard.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import { installGracefulShutdown, onShutdown } from '../shared/service/runtime/shutdown.js';
import { traceFields, withFields } from '../shared/service/runtime/trace.js';
import { firstCalls, onWarmUp } from '../shared/service/runtime/warm-up.js';

let deps: SubscriberServices | undefined;

// On SIGTERM/SIGINT the deliveries in flight finish before the process exits.
installGracefulShutdown();
// Requests that are not Pub/Sub pushes get a 4xx saying what this endpoint is.
installPushGuard('subscriber');
// Push bodies are bounded (and never inflated) before the framework parses them.
installBodyGuard('subscriber');
onShutdown('close', async () => {
  await deps?.close();
});

/** Config, stores and publisher, created on the first event and kept for the instance's life. */
function dependencies(): SubscriberServices {
  deps ??= openSubscriberServices(loadConfig());
  return deps;
}

onWarmUp('subscriber', () => {
  const { store, messaging, topics } = dependencies();
  return firstCalls({ store, messaging, topic: topics.notifications });
});

cloudEvent('subscriber', async (event: CloudEvent<unknown>) => {
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
  const shared = dependencies();
  // The push request's trace (the framework copies its traceparent header onto the event).
  const trace = traceFields(shared.projectId, {
    traceparent: typeof event.traceparent === 'string' ? event.traceparent : undefined,
  });
  const logger = withFields(shared.log ?? log, trace);
  if (isDeadLetterDelivery(event, shared.topics.deadLetter)) {
    // A push of the dead-letter topic: keep it (docs/contracts.md, contract 6), never apply it.
    await storeDeadLetter(message, { store: shared.deadLetters, log: logger });
    return;
  }
  await handleEventMessage(message, { ...shared, log: logger });
});
