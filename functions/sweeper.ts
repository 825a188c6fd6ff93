/**
 * The `sweeper` HTTP function: one sweep per request (shared/service/sweeper/handler.ts). Cloud
 * Scheduler calls it every minute with an OIDC token; only its service account may invoke it.
 */
import * as functions from '@google-cloud/functions-framework';
import { installBodyGuard } from '../shared/service/http/body-guard.js';
import { instance } from '../shared/service/runtime/instance.js';
import { sweeperHandler } from '../shared/service/sweeper/handler.js';

// Bodies (the sweeper reads none) are bounded and never inflated before the framework parses them.
installBodyGuard('sweeper');
functions.http(
  'sweeper',
  sweeperHandler(() => instance.sweeper()),
);
instance.warmUp('sweeper', () => instance.sweeper());
