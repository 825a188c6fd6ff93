/**
 * The stores of one instance on one Bigtable access: the operation store and the dead-letter
 * store share one client, which `close()` closes once (each function's `close` shutdown hook).
 */
import type { Config } from '../../runtime/config.js';
import { BigtableAccess } from './access.js';
import { DeadLetterStore } from './dead-letters.js';
import { BigtableOperationStore } from './operation-store.js';

export interface Stores {
  operations: BigtableOperationStore;
  deadLetters: DeadLetterStore;
  /** Closes the shared client: every call of both stores fails after. */
  close(): Promise<void>;
}

/** Opens the instance's access and both stores on it. */
export function openStores(config: Config, now: () => number = Date.now): Stores {
  const access = new BigtableAccess(config);
  return {
    operations: new BigtableOperationStore(config, now, access),
    deadLetters: new DeadLetterStore(config, now, access),
    close: () => access.close(),
  };
}
