/**
 * The pull subscriber's HTTP face (functions/subscriber-pull.ts): the runner does its work
 * without requests; a GET (or HEAD) answers what it is doing, for health checks and operators,
 * and every other method is refused with Google's error shape. While it pulls the answer is 200
 * with the status of both streams (`PullerStatus`); once it stops (shutdown), or if it could not
 * start (a configuration error), the answer is UNAVAILABLE or the error that stopped it.
 */
import type { ServerResponse } from 'node:http';
import { Code, LroError } from '../../sdk/errors.js';
import { leaveFrameworkDomain } from '../http/framework-domain.js';
import { type ApiRequest, methodNotAllowed, sendError, sendJson } from '../http/io.js';
import type { Puller } from './puller.js';

/** The handler; `puller` returns the started runner (built on first use), or throws. */
export function pullStatusHandler(
  puller: () => Puller,
): (req: ApiRequest, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    leaveFrameworkDomain();
    try {
      const method = (req.method ?? 'GET').toUpperCase();
      if (method !== 'GET' && method !== 'HEAD') {
        const path = new URL(req.originalUrl ?? req.url ?? '/', 'http://localhost').pathname;
        throw methodNotAllowed(method, path, ['GET', 'HEAD']);
      }
      const status = puller().status();
      if (status.state !== 'pulling') {
        throw new LroError(Code.UNAVAILABLE, `the pull subscriber is ${status.state}`);
      }
      sendJson(res, 200, status);
    } catch (err) {
      sendError(res, err, { function: 'subscriberPull' });
    }
  };
}
