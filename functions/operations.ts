/** The `operations` HTTP function: the operations API (shared/service/api/api.ts). */
import * as functions from '@google-cloud/functions-framework';
import { instanceApiHandler } from '../shared/service/api/api.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { installFrameworkErrorBodies } from '../shared/service/http/io.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import { installGracefulShutdown } from '../shared/service/runtime/shutdown.js';
import { firstCalls, onWarmUp } from '../shared/service/runtime/warm-up.js';
import { openStores } from '../shared/service/store/bigtable/stores.js';

installFrameworkErrorBodies();
// Bodies are bounded (and never inflated) before the framework parses them.
installBodyGuard('operations');
installGracefulShutdown();
const handler = instanceApiHandler(() => loadConfig(), openStores);
functions.http('operations', handler);
onWarmUp('operations', () => {
  const { store, messaging, config } = handler.services();
  return firstCalls({ store, messaging, topic: config.topics.notifications });
});
