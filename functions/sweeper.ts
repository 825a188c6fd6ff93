/**
 * The `sweeper` HTTP function: one sweep per request (shared/service/sweeper/sweeper.ts), answering with what it
 * did. Cloud Scheduler calls it every minute with an OIDC token; only its service account may
 * invoke it. Concurrent calls are safe (the sweep is built for several sweepers at once).
 */
import * as functions from '@google-cloud/functions-framework';
import { Code, LroError } from '../shared/sdk/errors.js';
import { log } from '../shared/sdk/log.js';
import { Messaging } from '../shared/sdk/messaging.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { leaveFrameworkDomain } from '../shared/service/http/framework-domain.js';
import { sendError, sendJson } from '../shared/service/http/io.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import { onShutdown } from '../shared/service/runtime/shutdown.js';
import { firstCalls, onWarmUp } from '../shared/service/runtime/warm-up.js';
import { openStores, type Stores } from '../shared/service/store/bigtable/stores.js';
import { type SweeperDeps, sweep } from '../shared/service/sweeper/sweeper.js';

let deps: SweeperDeps | undefined;
let stores: Stores | undefined;

// Bodies (the sweeper reads none) are bounded and never inflated before the framework parses them.
installBodyGuard('sweeper');
onShutdown('close', async () => {
  await Promise.allSettled([stores?.close(), deps?.messaging.close()]);
});

/**
 * Config, stores (one Bigtable client) and publisher, created on the first call and kept for the
 * instance's life.
 */
function dependencies(): SweeperDeps {
  if (!deps) {
    const config = loadConfig();
    stores = openStores(config);
    deps = {
      store: stores.operations,
      deadLetters: stores.deadLetters,
      messaging: new Messaging(config),
      topics: {
        notifications: config.topics.notifications,
        wakeups: config.topics.wakeups,
        events: config.topics.events,
      },
    };
  }
  return deps;
}

onWarmUp('sweeper', () => {
  const { store, messaging, topics } = dependencies();
  return firstCalls({ store, messaging, topic: topics.notifications });
});

functions.http('sweeper', async (req, res) => {
  leaveFrameworkDomain();
  try {
    if (req.method !== 'POST' && req.method !== 'GET') {
      throw new LroError(Code.INVALID_ARGUMENT, `method ${req.method} not allowed; use POST`);
    }
    const report = await sweep(dependencies());
    if (report.ended > 0 || report.failed > 0 || report.deadLettersReplayed > 0 || report.more) {
      log.info('sweep done', { ...report });
    }
    sendJson(res, 200, report);
  } catch (err) {
    sendError(res, err, { function: 'sweeper' });
  }
});
