/**
 * What one function instance holds for its life, built once, on first use (the first request or
 * event, or the warm-up before traffic), and released on shutdown: the config (parsed once), the
 * stores (one Bigtable client: `openStores`), the Pub/Sub client, and what each function adds to
 * them: the operations API its waiter and notification listeners, the subscriber and the sweeper
 * their topics, the pull subscriber its streams. The entry points in functions/ take their
 * services from here and only register their handlers.
 *
 * Shutdown (shutdown.ts): the API's pending waits are answered and its watches ended first
 * (`drain`); then the listeners' subscriptions are deleted, and the clients closed last
 * (`close`), once whatever uses them is done.
 */
import { defaults } from '../../sdk/defaults.js';
import { log } from '../../sdk/log.js';
import { Messaging } from '../../sdk/messaging.js';
import type { ApiServices } from '../api/services.js';
import type { SubscriberServices } from '../events/delivery.js';
import { Puller } from '../events/puller.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { BigtableOperationStore } from '../store/bigtable/operation-store.js';
import { openStores as openBigtable } from '../store/bigtable/stores.js';
import type { SweeperDeps } from '../sweeper/sweeper.js';
import { NotificationHub, Waiter } from '../wait/waiter.js';
import { type Config, loadConfig } from './config.js';
import { onShutdown } from './shutdown.js';
import { firstCalls, onWarmUp, type WarmUpStep } from './warm-up.js';

/** The stores of an instance: the operation store and the dead-letter store, one client. */
export interface Stores {
  store: BigtableOperationStore;
  deadLetters: DeadLetterStore;
  /** Closes the Bigtable client; failures are ignored (the process is ending). */
  close(): Promise<void>;
}

/** Opens the stores of an instance from its config: the one place they are constructed. */
export function openStores(config: Config): Stores {
  const opened = openBigtable(config);
  return {
    store: opened.operations,
    deadLetters: opened.deadLetters,
    async close() {
      await opened.close().catch(() => undefined);
    },
  };
}

export class Instance {
  private loaded: Config | undefined;
  private opened: Stores | undefined;
  private client: Messaging | undefined;
  private apiServices: ApiServices | undefined;
  private subscriberServices: SubscriberServices | undefined;
  private pullRunner: Puller | undefined;
  private sweeperDeps: SweeperDeps | undefined;
  /** Notification listeners, closed before the clients. */
  private readonly listeners: { close(): Promise<void> }[] = [];
  private hooked = false;

  /** `load` parses the config (from the environment by default). */
  constructor(private readonly load: () => Config = () => loadConfig()) {}

  config(): Config {
    this.loaded ??= this.load();
    return this.loaded;
  }

  stores(): Stores {
    if (!this.opened) {
      const opened = openStores(this.config());
      this.opened = opened;
      this.closeOnShutdown();
    }
    return this.opened;
  }

  messaging(): Messaging {
    if (!this.client) {
      const client = new Messaging(this.config());
      this.client = client;
      this.closeOnShutdown();
    }
    return this.client;
  }

  /**
   * The operations API's services. Waits follow the wake-ups; watches open a subscription on the
   * notifications topic while there are any (or poll), so an instance without a watch receives no
   * full notification. On shutdown pending waits are answered with the latest state and watches
   * end with `event: end`, then the listeners' subscriptions are deleted.
   */
  api(): ApiServices {
    if (this.apiServices) return this.apiServices;
    const config = this.config();
    const { store, deadLetters } = this.stores();
    const messaging = this.messaging();
    const hub = config.wait.notifications
      ? new NotificationHub(messaging, config.topics.wakeups, { carries: 'wakeups' })
      : undefined;
    const watchHub =
      config.wait.notifications && config.wait.watchMode === 'subscription'
        ? new NotificationHub(messaging, config.topics.notifications, {
            subscriptionPrefix: `${config.topics.notifications.slice(0, 200)}-watch`,
            idleCloseMs: defaults.watchSubscriptionIdleMs,
          })
        : undefined;
    const every = defaults.watchPollIntervalMs;
    const waiter = new Waiter({
      store,
      ...(hub ? { hub } : {}),
      poll: { notifiedInitialMs: config.wait.safetyPollMs },
      ...(watchHub ? { watchHub } : {}),
      ...(config.wait.watchMode === 'poll'
        ? { watchPoll: { initialMs: every, notifiedInitialMs: every, multiplier: 1, maxMs: every } }
        : {}),
    });
    for (const listener of [hub, watchHub]) if (listener) this.listeners.push(listener);
    this.apiServices = { config, store, waiter, messaging, deadLetters };
    onShutdown('drain', () => waiter.endAll());
    log.info('operations API ready', {
      notifications: config.wait.notifications,
      watchMode: config.wait.watchMode,
      subscription: hub?.subscriptionName,
    });
    return this.apiServices;
  }

  /** The subscriber function's services. */
  subscriber(): SubscriberServices {
    if (!this.subscriberServices) {
      const config = this.config();
      const { store, deadLetters } = this.stores();
      this.subscriberServices = {
        projectId: config.projectId,
        store,
        deadLetters,
        failures: deadLetters,
        messaging: this.messaging(),
        topics: {
          notifications: config.topics.notifications,
          wakeups: config.topics.wakeups,
          deadLetter: config.topics.deadLetter,
        },
      };
    }
    return this.subscriberServices;
  }

  /**
   * The pull subscriber (events/puller.ts), started: it streams the events and dead-letter store
   * subscriptions into the subscriber's handlers. On shutdown it stops pulling and finishes the
   * messages in its handlers (`drain`), before the clients close.
   */
  puller(): Puller {
    if (!this.pullRunner) {
      const config = this.config();
      const puller = new Puller({
        messaging: this.messaging(),
        subscriptions: config.subscriptions,
        services: () => this.subscriber(),
      });
      this.pullRunner = puller;
      onShutdown('drain', () => puller.stop());
      puller.start();
    }
    return this.pullRunner;
  }

  /** The sweeper function's services. */
  sweeper(): SweeperDeps {
    if (!this.sweeperDeps) {
      const config = this.config();
      const { store, deadLetters } = this.stores();
      this.sweeperDeps = {
        store,
        deadLetters,
        messaging: this.messaging(),
        topics: {
          notifications: config.topics.notifications,
          wakeups: config.topics.wakeups,
          events: config.topics.events,
        },
      };
    }
    return this.sweeperDeps;
  }

  /**
   * Warms the instance serving `target` before traffic (warm-up.ts): builds the function's
   * services with `build`, then makes the first calls of its store and publisher, and runs `more`
   * (steps of the function's own, such as decoding an event).
   */
  warmUp(target: string, build: () => unknown, more: readonly WarmUpStep[] = []): void {
    onWarmUp(target, () => {
      build();
      return [
        ...firstCalls({
          store: this.stores().store,
          messaging: this.messaging(),
          topic: this.config().topics.notifications,
        }),
        ...more,
      ];
    });
  }

  /** Deletes the listeners' subscriptions, then closes the clients; failures are ignored. */
  async close(): Promise<void> {
    await Promise.allSettled(this.listeners.map((listener) => listener.close()));
    await Promise.allSettled([this.opened?.close(), this.client?.close()]);
  }

  private closeOnShutdown(): void {
    if (this.hooked) return;
    this.hooked = true;
    onShutdown('close', () => this.close());
  }
}

/** The instance of this process (config from the environment). */
export const instance = new Instance();
