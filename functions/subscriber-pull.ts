/**
 * The pull subscriber: the `subscriber`'s work on messages it pulls from the events subscription
 * and the dead-letter store subscription (shared/service/events/puller.ts), for an always-on
 * instance (Cloud Run, CPU always allocated, at least one instance) instead of one billed push
 * request per event. docs/deploy.md says when to choose it; Terraform deploys it with
 * `subscriber_delivery = "pull"`.
 *
 * The runner starts when the instance serving `subscriberPull` loads this module, before the
 * framework listens; the HTTP function only answers a status GET (shared/service/events/
 * pull-status.ts). On SIGTERM/SIGINT the runner stops pulling and finishes the messages in its
 * handlers (acked or nacked) before the clients close (shared/service/runtime/shutdown.ts).
 */
import * as functions from '@google-cloud/functions-framework';
import { log } from '../shared/sdk/log.js';
import { pullStatusHandler } from '../shared/service/events/pull-status.js';
import { eventDecodingWarmUp } from '../shared/service/events/subscriber.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { frameworkTarget } from '../shared/service/http/push-guard.js';
import { instance } from '../shared/service/runtime/instance.js';
import { installGracefulShutdown } from '../shared/service/runtime/shutdown.js';

const TARGET = 'subscriberPull';

installGracefulShutdown();
// Bodies (the status endpoint reads none) are bounded and never inflated.
installBodyGuard(TARGET);
functions.http(
  TARGET,
  pullStatusHandler(() => instance.puller()),
);
instance.warmUp(TARGET, () => instance.subscriber(), [eventDecodingWarmUp()]);
if (frameworkTarget(process.argv, process.env) === TARGET) {
  try {
    instance.puller();
  } catch (err) {
    // A configuration error: the status endpoint answers it on every request.
    log.error('pull subscriber not started', { error: err instanceof Error ? err.message : err });
  }
}
