/**
 * The sweeper's HTTP handler: one sweep per request (sweeper.ts), answering with what it did.
 * Cloud Scheduler calls it every minute with an OIDC token; only its service account may invoke
 * it. Concurrent calls are safe (the sweep is built for several sweepers at once).
 */
import type { ServerResponse } from 'node:http';
import { Code, LroError } from '../../sdk/errors.js';
import { log } from '../../sdk/log.js';
import { leaveFrameworkDomain } from '../http/framework-domain.js';
import { type ApiRequest, sendError, sendJson } from '../http/io.js';
import { type SweeperDeps, sweep } from './sweeper.js';

/** The handler; `deps` is called on each request and may build them on first use. */
export function sweeperHandler(
  deps: () => SweeperDeps,
): (req: ApiRequest, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    leaveFrameworkDomain();
    try {
      if (req.method !== 'POST' && req.method !== 'GET') {
        throw new LroError(Code.INVALID_ARGUMENT, `method ${req.method} not allowed; use POST`);
      }
      const report = await sweep(deps());
      if (report.ended > 0 || report.failed > 0 || report.deadLettersReplayed > 0 || report.more) {
        log.info('sweep done', { ...report });
      }
      sendJson(res, 200, report);
    } catch (err) {
      sendError(res, err, { function: 'sweeper' });
    }
  };
}
