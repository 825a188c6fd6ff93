/**
 * What one subscriber instance holds for its life: the config, one Bigtable client shared by
 * the operation store and the dead-letter store, and one Pub/Sub client. `close()` releases
 * them all (the shutdown hook of functions/subscriber.ts).
 */
import { Messaging } from '../../sdk/messaging.js';
import type { Config } from '../runtime/config.js';
import { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import { createStore } from '../store/bigtable/operation-store.js';
import type { SubscriberDeps } from './subscriber.js';

export interface SubscriberServices extends SubscriberDeps {
  projectId: string;
  deadLetters: DeadLetterStore;
  /** Closes the Bigtable and Pub/Sub clients; failures are ignored (the process is ending). */
  close(): Promise<void>;
}

export function openSubscriberServices(config: Config): SubscriberServices {
  const store = createStore(config);
  const deadLetters = new DeadLetterStore(config, Date.now, store.connection);
  const messaging = new Messaging(config);
  return {
    projectId: config.projectId,
    store,
    deadLetters,
    failures: deadLetters,
    messaging,
    topics: {
      notifications: config.topics.notifications,
      wakeups: config.topics.wakeups,
      deadLetter: config.topics.deadLetter,
    },
    async close() {
      await Promise.allSettled([deadLetters.close(), store.close(), messaging.close()]);
    },
  };
}
