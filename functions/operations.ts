/** The `operations` HTTP function: the operations API (shared/service/api/api.ts). */
import * as functions from '@google-cloud/functions-framework';
import { createApiHandler } from '../shared/service/api/api.js';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { installFrameworkErrorBodies } from '../shared/service/http/io.js';
import { instance } from '../shared/service/runtime/instance.js';
import { installRehearsal, rehearsalGet } from '../shared/service/runtime/rehearsal.js';
import { installGracefulShutdown } from '../shared/service/runtime/shutdown.js';

installFrameworkErrorBodies();
// Bodies are bounded (and never inflated) before the framework parses them.
installBodyGuard('operations');
// On SIGTERM/SIGINT pending waits are answered and watches ended before the process exits.
installGracefulShutdown();
functions.http(
  'operations',
  createApiHandler(() => instance.api()),
);
instance.warmUp('operations', () => instance.api());
// After the warm-up, one GET (a 404) goes through the server before it listens.
installRehearsal('operations', rehearsalGet);
