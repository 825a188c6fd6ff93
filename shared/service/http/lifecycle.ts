/**
 * What every API request goes through, in order, as one `(req, res)` handler over Node's HTTP
 * types: a request after the shutdown signal is refused (UNAVAILABLE, shutdown.ts); a browser
 * page's cross-site request is refused (cross-site.ts); the services are built (on the first
 * request) and the request's trace is found; mounted paths (the console) are served as they are;
 * any other path is resolved by the router (router.ts), its query and JSON body validated by the
 * route's schemas, and its handler called. Every error becomes a Google error body (io.ts), and
 * one log line per request says what was asked and answered, with the trace and the operation.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { Code, LroError } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import { parseOrInvalid } from '../../sdk/model.js';
import { rehearsalOperation } from '../runtime/rehearsal.js';
import { shuttingDown } from '../runtime/shutdown.js';
import { traceFields, withFields } from '../runtime/trace.js';
import { crossSiteRefusal } from './cross-site.js';
import { leaveFrameworkDomain } from './framework-domain.js';
import {
  type ApiRequest,
  jsonBody,
  methodNotAllowed,
  queryOf,
  routeNotFound,
  sendError,
} from './io.js';
import type { Resolve } from './router.js';

export type RequestHandler = (req: ApiRequest, res: ServerResponse) => Promise<void>;

/** What the lifecycle itself needs of the services: the project (for traces) and a logger. */
export interface LifecycleServices {
  config: { projectId: string };
  logger?: Logger;
}

/** A path served outside the routing table (with everything under `path/`). */
export interface Mount {
  path: string;
  serve(method: string, pathname: string, res: ServerResponse): Promise<void>;
}

export interface RequestHandlerOptions<S extends LifecycleServices> {
  resolve: Resolve<S>;
  /** Called on each request; may build the services on first use. */
  services: () => Promise<S> | S;
  mounts?: readonly Mount[];
}

const EmptyQuerySchema = z.strictObject({});

export function createRequestHandler<S extends LifecycleServices>(
  options: RequestHandlerOptions<S>,
): RequestHandler {
  const { resolve, services, mounts = [] } = options;
  return async (req, res) => {
    leaveFrameworkDomain();
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    let url: URL;
    let logger = defaultLog;
    try {
      url = new URL(req.originalUrl ?? req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, new LroError(Code.INVALID_ARGUMENT, 'malformed request URL'));
      return;
    }
    let operation: string | undefined;
    let trace: Record<string, unknown> = {};
    try {
      if (shuttingDown(req)) {
        res.setHeader('connection', 'close');
        throw new LroError(Code.UNAVAILABLE, 'this instance is shutting down; retry');
      }
      // A page in a browser must not act through the API (cross-site.ts); no CORS either.
      const crossSite = crossSiteRefusal(method, req.headers);
      if (crossSite) throw new LroError(Code.PERMISSION_DENIED, crossSite);
      const resolved = await services();
      trace = traceFields(resolved.config.projectId, {
        traceparent: headerOf(req, 'traceparent'),
        xCloudTraceContext: headerOf(req, 'x-cloud-trace-context'),
      });
      logger = withFields(resolved.logger ?? defaultLog, trace);
      const mount = mounts.find(
        (m) => url.pathname === m.path || url.pathname.startsWith(`${m.path}/`),
      );
      if (mount) return await mount.serve(method, url.pathname, res);
      const match = resolve(url.pathname);
      if (!match) throw routeNotFound(method, url.pathname);
      operation = match.name;
      const wanted = method === 'HEAD' ? 'GET' : method;
      const route = match.routes.find((r) => r.method === wanted);
      if (!route) {
        throw methodNotAllowed(
          method,
          url.pathname,
          match.routes.map((r) => r.method),
        );
      }
      const query = parseOrInvalid(
        route.query ?? EmptyQuerySchema,
        queryOf(url.searchParams),
        route.queryName ?? 'query',
      );
      const body = route.body
        ? parseOrInvalid(route.body, jsonBody(req), route.bodyName ?? 'request body')
        : undefined;
      await route.handler({
        req,
        res,
        query,
        body,
        params: match.params,
        name: match.name ?? '',
        services: resolved,
        signal: controller.signal,
        log: logger,
      });
    } catch (err) {
      sendError(res, err, { ...trace, operation, path: url.pathname });
    } finally {
      const fields: Record<string, unknown> = {
        httpRequest: {
          requestMethod: method,
          requestUrl: url.pathname + url.search,
          status: res.statusCode,
          latency: `${((Date.now() - started) / 1000).toFixed(3)}s`,
          userAgent: req.headers['user-agent'],
        },
      };
      if (operation) fields.operation = operation;
      if (controller.signal.aborted) fields.callerGone = true;
      // The instance's own rehearsal before it serves (runtime/rehearsal.ts) is not a request.
      if (operation !== rehearsalOperation) {
        logger.info(`${method} ${url.pathname} ${res.statusCode}`, fields);
      }
    }
  };
}

function headerOf(req: ApiRequest, name: string): string | undefined {
  const header = req.headers[name];
  return Array.isArray(header) ? header[0] : header;
}
