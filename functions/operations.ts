/** The `operations` HTTP function: the operations API (shared/service/api.ts). */
import * as functions from '@google-cloud/functions-framework';
import { instanceApiHandler } from '../shared/service/api.js';
import { createStore } from '../shared/service/bigtable-store.js';
import { installBodyGuard } from '../shared/service/body-guard.js';
import { loadConfig } from '../shared/service/config.js';
import { installFrameworkErrorBodies } from '../shared/service/http.js';
import { installGracefulShutdown } from '../shared/service/shutdown.js';
import { firstCalls, onWarmUp } from '../shared/service/warm-up.js';

installFrameworkErrorBodies();
// Bodies are bounded (and never inflated) before the framework parses them.
installBodyGuard('operations');
installGracefulShutdown();
const handler = instanceApiHandler(() => loadConfig(), createStore);
functions.http('operations', handler);
onWarmUp('operations', () => {
  const { store, messaging, config } = handler.services();
  return firstCalls({ store, messaging, topic: config.topics.notifications });
});
