/**
 * The API's announcements (creations, cancellation requests, deletions on the notifications
 * topic, and a wake-up for a change that ends an operation), published in the background: a request is answered once its change is durable in
 * Bigtable, never held by Pub/Sub. A stalled Pub/Sub would otherwise hold the answer for as long
 * as the client library retries a publish (about a minute).
 *
 * Each announcement is tried `defaults.announceAttemptsMax` times at most (each attempt bounded
 * by the client library's own retry deadline), with exponential backoff in between, then given
 * up with a WARNING. Losing one is tolerable by design: workers that miss a cancellation request
 * poll for it (the `x-lro-cancel-requested` header), and waits poll Bigtable as a safety net.
 */
import { defaults } from '../../sdk/defaults.js';
import { toLroError } from '../../sdk/errors.js';
import type { Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import type { Operation } from '../../sdk/model.js';
import {
  type AnnounceTopics,
  announce as announceNow,
  type NotificationType,
} from '../../sdk/notifications.js';

const pending = new Set<Promise<void>>();

/** Announcements still being published (for tests and shutdown). */
export function pendingAnnouncements(): number {
  return pending.size;
}

/** Publishes a notification in the background with bounded retries; returns at once. */
export function announce(
  messaging: Messaging,
  topics: AnnounceTopics,
  notification: { type: NotificationType; operation: Operation },
  log: Logger,
): void {
  const task = (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await announceNow(messaging, topics, notification, log);
        return;
      } catch (err) {
        const fields = {
          operation: notification.operation.name,
          attempt,
          error: toLroError(err),
        };
        if (attempt >= defaults.announceAttemptsMax) {
          log.warn(`could not publish the ${notification.type} notification; giving up`, fields);
          return;
        }
        log.warn(`could not publish the ${notification.type} notification; retrying`, fields);
        const delay = Math.min(
          defaults.announceRetryInitialMs * 2 ** (attempt - 1),
          defaults.announceRetryMaxMs,
        );
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  })();
  pending.add(task);
  void task.finally(() => pending.delete(task));
}
