/**
 * What the API's handlers work with (the services of an operations instance, built by
 * runtime/instance.ts), and the route and context types of the API's routing table.
 */
import type { Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import type { Context, Route } from '../http/router.js';
import type { Config } from '../runtime/config.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { OperationStore } from '../store/store.js';
import type { Waiter } from '../wait/waiter.js';

export interface ApiServices {
  config: Config;
  store: OperationStore;
  waiter: Waiter;
  /** Publishes notifications (cancellation requests, creations, deletions) when present. */
  messaging?: Messaging;
  /** Kept dead letters (the /v1/deadLetters routes answer UNIMPLEMENTED without). */
  deadLetters?: DeadLetterStore;
  logger?: Logger;
}

/** One route of the API (http/router.ts). */
export type ApiRoute<Q = unknown, B = unknown> = Route<ApiServices, Q, B>;

/** What an API handler is given. */
export type ApiContext<Q = unknown, B = unknown> = Context<ApiServices, Q, B>;
