/** The `operations` HTTP function: the operations API (shared/api.ts). */
import * as functions from '@google-cloud/functions-framework';
import { instanceApiHandler } from '../shared/api.js';
import { createStore } from '../shared/bigtable-store.js';
import { loadConfig } from '../shared/config.js';
import { installFrameworkErrorBodies } from '../shared/http.js';
import { installGracefulShutdown } from '../shared/shutdown.js';

installFrameworkErrorBodies();
installGracefulShutdown();
functions.http(
  'operations',
  instanceApiHandler(() => loadConfig(), createStore),
);
