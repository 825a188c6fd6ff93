/**
 * How a worker learns that its operation's cancellation was requested
 * (docs/contracts.md, contract 3): one listener per process on the notifications topic
 * (`CancellationWatcher`, shared by every reporter of the process), and the polling fallbacks a
 * reporter can be given
 * (`cancellationFromStore`, `cancellationFromApi`) for when a notification is lost or the listener
 * cannot be created. `OperationReporter` (reporter.ts) uses them; the polling fallbacks are part of
 * the worker package's API.
 */
import { randomUUID } from 'node:crypto';
import { cancelRequestedOf } from './cancel-requested.js';
import { defaults } from './defaults.js';
import { Code } from './errors.js';
import type { Logger } from './log.js';
import type { Listener, Messaging } from './messaging.js';
import { parseNotification } from './notifications.js';
import type { Operation } from './operation.js';

/** Whether the operation's cancellation was requested (polling fallback). */
export type CancellationCheck = (operation: string) => Promise<boolean>;

/** Pub/Sub and the topics a reporter uses (the service's Config has this shape too). */
/** Notifications topics whose listener failure was already reported in this process. */
const unavailableListeners = new Set<string>();

/**
 * The cancellation listener could not be created (typically PERMISSION_DENIED: the worker's
 * account may publish events but not create subscriptions, or the topic does not exist). Publishing
 * is unaffected; one warning per topic and process says what cancellation now relies on.
 */
export function listenerUnavailable(
  log: Logger,
  topic: string,
  err: unknown,
  context: { operation: string; pollIntervalMs: number | undefined },
): void {
  if (unavailableListeners.has(topic)) return;
  unavailableListeners.add(topic);
  const polling = context.pollIntervalMs !== undefined;
  log.warn(
    polling
      ? 'cancellation listener unavailable; cancellation is seen by polling only'
      : 'cancellation listener unavailable and no polling fallback: cancellation requests are not seen',
    {
      operation: context.operation,
      topic,
      error: err instanceof Error ? err : String(err),
      fallback: polling ? `pollCancellation every ${context.pollIntervalMs} ms` : 'none',
      ...(polling
        ? {}
        : {
            hint: 'pass pollCancellation: cancellationFromApi(apiUrl, headers) (or topics.notifications: false to skip the listener)',
          }),
    },
  );
}

/** Polling fallback for workers with store access: cancellation was recorded, or it ended so. */
export function cancellationFromStore(store: {
  get(name: string): Promise<{ cancelRequestTime?: Date; operation: Operation }>;
}): CancellationCheck {
  return async (operation) => {
    const record = await store.get(operation);
    return (
      record.cancelRequestTime !== undefined ||
      (record.operation.done && record.operation.error?.code === Code.CANCELLED)
    );
  };
}

/**
 * Polling fallback through the HTTP API (`GET {baseUrl}/v1/operations/{id}`): a pending request is
 * in the `x-lro-cancel-requested` response header, and an operation that ended CANCELLED counts
 * too. `headers` may carry credentials (an ID token for the API's URL), or be a function that
 * returns fresh ones on every poll.
 */
export function cancellationFromApi(
  baseUrl: string,
  headers:
    | Record<string, string>
    | (() => Record<string, string> | Promise<Record<string, string>>) = {},
): CancellationCheck {
  return async (operation) => {
    const response = await fetch(`${baseUrl.replace(/\/$/, '')}/v1/${operation}`, {
      headers: typeof headers === 'function' ? await headers() : headers,
    });
    if (!response.ok) throw new Error(`GET ${operation}: HTTP ${response.status}`);
    if (cancelRequestedOf(response.headers) !== undefined) {
      await response.body?.cancel();
      return true;
    }
    const body = (await response.json()) as { done?: boolean; error?: { code?: number } };
    return body.done === true && body.error?.code === Code.CANCELLED;
  };
}

/**
 * One listener per process (per Messaging and notifications topic) for cancellation requests,
 * shared by all reporters: a filtered pull subscription with an expiration policy, created for
 * the first reporter and deleted after the last one left.
 */
export class CancellationWatcher {
  private static readonly watchers = new WeakMap<Messaging, Map<string, CancellationWatcher>>();
  private readonly callbacks = new Map<string, Set<() => void>>();
  private readonly subscription = `lro-cancel-${randomUUID()}`;
  private started: Promise<Listener> | undefined;
  private users = 0;

  private constructor(
    private readonly messaging: Messaging,
    private readonly topic: string,
    private readonly log: Logger,
  ) {}

  static for(messaging: Messaging, topic: string, log: Logger): CancellationWatcher {
    let byTopic = CancellationWatcher.watchers.get(messaging);
    if (!byTopic) {
      byTopic = new Map();
      CancellationWatcher.watchers.set(messaging, byTopic);
    }
    let watcher = byTopic.get(topic);
    if (!watcher) {
      watcher = new CancellationWatcher(messaging, topic, log);
      byTopic.set(topic, watcher);
    }
    return watcher;
  }

  /** Registers a callback for an operation; resolves with its removal once listening. */
  async add(operation: string, onCancel: () => void): Promise<() => Promise<void>> {
    this.users++;
    let set = this.callbacks.get(operation);
    if (!set) {
      set = new Set();
      this.callbacks.set(operation, set);
    }
    set.add(onCancel);
    const remove = async () => {
      const current = this.callbacks.get(operation);
      current?.delete(onCancel);
      if (current?.size === 0) this.callbacks.delete(operation);
      if (--this.users === 0) await this.stop();
    };
    try {
      this.started ??= this.start();
      await this.started;
    } catch (err) {
      await remove();
      throw err;
    }
    return remove;
  }

  private async start(): Promise<Listener> {
    await this.messaging.ensurePullSubscription(this.subscription, this.topic, {
      filter: 'attributes.type = "cancelRequested"',
      expirationSeconds: defaults.listenerSubscriptionExpirationSeconds,
      ackDeadlineSeconds: 10,
    });
    return this.messaging.listen(
      this.subscription,
      (message) => {
        message.ack();
        const notification = parseNotification(message);
        if (notification?.type !== 'cancelRequested') return;
        for (const callback of this.callbacks.get(notification.operation.name) ?? []) callback();
      },
      (err) => this.log.warn('cancellation listener failed', { error: err }),
    );
  }

  private async stop() {
    const started = this.started;
    this.started = undefined;
    CancellationWatcher.watchers.get(this.messaging)?.delete(this.topic);
    if (!started) return;
    try {
      const listener = await started;
      await listener.close();
    } catch {
      // It never started: nothing to close.
    }
    await this.messaging.deleteSubscription(this.subscription).catch((err: unknown) => {
      this.log.warn('could not delete the cancellation subscription', {
        subscription: this.subscription,
        error: err instanceof Error ? err : String(err),
      });
    });
  }
}
