/**
 * What one subscriber instance holds for its life: the config, one Bigtable client shared by
 * the operation store and the dead-letter store (`openStores`), and one Pub/Sub client. `close()` releases
 * them all (the shutdown hook of functions/subscriber.ts).
 */
import { Messaging } from '../../sdk/messaging.js';
import type { Config } from '../runtime/config.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import { openStores } from '../store/bigtable/stores.js';
import type { SubscriberDeps } from './subscriber.js';

export interface SubscriberServices extends SubscriberDeps {
  projectId: string;
  deadLetters: DeadLetterStore;
  /** Closes the Bigtable and Pub/Sub clients; failures are ignored (the process is ending). */
  close(): Promise<void>;
}

export function openSubscriberServices(config: Config): SubscriberServices {
  const stores = openStores(config);
  const { operations: store, deadLetters } = stores;
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
      await Promise.allSettled([stores.close(), messaging.close()]);
    },
  };
}
