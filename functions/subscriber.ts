/**
 * The subscriber function: a CloudEvent function for `google.cloud.pubsub.topic.v1.messagePublished`
 * (an Eventarc trigger on the events topic, or a plain push subscription, whose body the functions
 * framework converts). All logic is in shared/service/events/ (delivery.ts, subscriber.ts); the
 * instance's services are built once (shared/service/runtime/instance.ts).
 */
import { type CloudEvent, cloudEvent } from '@google-cloud/functions-framework';
import { handleDelivery } from '../shared/service/events/delivery.js';
import { rehearsalPush } from '../shared/service/events/rehearsal.js';
import { eventDecodingWarmUp } from '../shared/service/events/subscriber.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { installPushGuard } from '../shared/service/http/push-guard.js';
import { instance } from '../shared/service/runtime/instance.js';
import { installRehearsal } from '../shared/service/runtime/rehearsal.js';
import { installGracefulShutdown } from '../shared/service/runtime/shutdown.js';

// On SIGTERM/SIGINT the deliveries in flight finish before the process exits.
installGracefulShutdown();
// Requests that are not Pub/Sub pushes get a 4xx saying what this endpoint is.
installPushGuard('subscriber');
// Push bodies are bounded (and never inflated) before the framework parses them.
installBodyGuard('subscriber');
cloudEvent('subscriber', (event: CloudEvent<unknown>) =>
  handleDelivery(event, () => instance.subscriber()),
);
instance.warmUp('subscriber', () => instance.subscriber(), [eventDecodingWarmUp()]);
// After the warm-up, one push of its own goes through the server before it listens.
installRehearsal('subscriber', () => {
  const config = instance.config();
  return rehearsalPush(config.projectId, config.topics.events);
});
