/**
 * The operations API (public contract 1): the google.longrunning REST mapping plus the
 * project's extensions, as one `(req, res)` handler over Node's HTTP types. Routing and
 * handlers live here; body and query parsing and error bodies in http.ts; waiting in waiter.ts.
 *
 *   GET    /v1/operations                    ListOperations (filter, pageSize, pageToken)
 *   POST   /v1/operations                    create {operationId?, parent?, metadata?, requestId?}
 *   POST   /v1/operations:batchWait          {names, timeout?} -> {operations}
 *   GET    /v1/operations/{id}               GetOperation
 *   DELETE /v1/operations/{id}               DeleteOperation -> {}
 *   POST   /v1/operations/{id}:wait          WaitOperation {timeout?}
 *   POST   /v1/operations/{id}:cancel        CancelOperation {} -> {}
 *   GET    /v1/operations/{id}:watch         server-sent events, one per change, until done
 *   GET    /v1/operations/{id}:traverse      the tree of children (maxDepth)
 *   GET    /v1/operations/{id}:getParent     {parent?}
 *   GET    /v1/operations/{id}/children      immediate children (pageSize, pageToken)
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Config } from './config.js';
import { defaults } from './defaults.js';
import { Code, LroError, toLroError } from './errors.js';
import {
  type ApiRequest,
  jsonBody,
  methodNotAllowed,
  queryOf,
  routeNotFound,
  sendError,
  sendJson,
} from './http.js';
import { log as defaultLog, type Logger } from './log.js';
import { Messaging } from './messaging.js';
import {
  BatchWaitRequestSchema,
  CreateOperationRequestSchema,
  ListChildrenRequestSchema,
  ListOperationsRequestSchema,
  type Operation,
  OperationNameSchema,
  parseOrInvalid,
  toOperationName,
  WaitOperationRequestSchema,
} from './model.js';
import { type NotificationType, publishNotification } from './notifications.js';
import type { OperationRecord, OperationStore } from './store.js';
import { NotificationHub, Waiter } from './waiter.js';

/** The header naming the parent operation of operations created by this request. */
export const PARENT_HEADER = 'x-lro-parent';

export interface ApiServices {
  config: Config;
  store: OperationStore;
  waiter: Waiter;
  /** Publishes notifications (cancellation requests, creations, deletions) when present. */
  messaging?: Messaging;
  logger?: Logger;
}

export type ApiHandler = (req: ApiRequest, res: ServerResponse) => Promise<void>;

const TraverseRequestSchema = z.strictObject({
  maxDepth: z.coerce
    .number()
    .int('must be an integer')
    .min(0, 'must not be negative')
    .max(defaults.traverseDepthMax, `must be at most ${defaults.traverseDepthMax}`)
    .default(defaults.traverseDepthDefault),
});
const EmptyQuerySchema = z.strictObject({});
const CancelRequestSchema = z.strictObject({});

interface Route {
  /** The operation name for routes under /v1/operations/{id}. */
  name?: string;
  handlers: Partial<Record<string, Handler>>;
}

type Handler = (ctx: Context) => Promise<void>;

interface Context {
  req: ApiRequest;
  res: ServerResponse;
  query: Record<string, string>;
  name: string;
  services: ApiServices;
  signal: AbortSignal;
  log: Logger;
}

/** The API handler; `services` is called on each request and may build them on first use. */
export function createApiHandler(services: () => Promise<ApiServices> | ApiServices): ApiHandler {
  return async (req, res) => {
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
    try {
      const resolved = await services();
      logger = resolved.logger ?? defaultLog;
      const route = resolve(url.pathname);
      if (!route) throw routeNotFound(method, url.pathname);
      operation = route.name;
      const handler = route.handlers[method === 'HEAD' ? 'GET' : method];
      if (!handler) {
        throw methodNotAllowed(method, url.pathname, Object.keys(route.handlers));
      }
      await handler({
        req,
        res,
        query: queryOf(url.searchParams),
        name: route.name ?? '',
        services: resolved,
        signal: controller.signal,
        log: logger,
      });
    } catch (err) {
      sendError(res, err, { operation, path: url.pathname });
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
      const trace = traceOf(req);
      if (trace) fields.trace = trace;
      if (controller.signal.aborted) fields.callerGone = true;
      logger.info(`${method} ${url.pathname} ${res.statusCode}`, fields);
    }
  };
}

/** The route of a path, or undefined. Accepts `:` percent-encoded (`%3A`) too. */
function resolve(pathname: string): Route | undefined {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    throw new LroError(Code.INVALID_ARGUMENT, 'malformed percent-encoding in the path');
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (path === '/v1/operations') return { handlers: { GET: listOperations, POST: create } };
  if (path === '/v1/operations:batchWait') return { handlers: { POST: batchWait } };
  const prefix = '/v1/operations/';
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const id = rest.slice(0, slash);
    const sub = rest.slice(slash + 1);
    if (sub === 'children') return { name: nameOf(id), handlers: { GET: listChildren } };
    if (sub === 'parent') return { name: nameOf(id), handlers: { GET: getParent } };
    if (sub === 'tree') return { name: nameOf(id), handlers: { GET: traverse } };
    return undefined;
  }
  const colon = rest.indexOf(':');
  if (colon < 0) return { name: nameOf(rest), handlers: { GET: get, DELETE: remove } };
  const name = nameOf(rest.slice(0, colon));
  switch (rest.slice(colon + 1)) {
    case 'wait':
      return { name, handlers: { POST: wait } };
    case 'cancel':
      return { name, handlers: { POST: cancel } };
    case 'watch':
      return { name, handlers: { GET: watch } };
    case 'traverse':
      return { name, handlers: { GET: traverse } };
    case 'getParent':
      return { name, handlers: { GET: getParent } };
    default:
      return undefined;
  }
}

function nameOf(id: string): string {
  if (id === '') throw new LroError(Code.INVALID_ARGUMENT, 'the operation ID is empty');
  return toOperationName(`operations/${id}`);
}

function traceOf(req: ApiRequest): string | undefined {
  const header = req.headers['x-cloud-trace-context'];
  const value = Array.isArray(header) ? header[0] : header;
  const id = value?.split('/')[0];
  return id && /^[0-9a-f]{32}$/i.test(id) ? id : undefined;
}

function noQuery(ctx: Context): void {
  parseOrInvalid(EmptyQuerySchema, ctx.query, 'query');
}

function publish(ctx: Context, type: NotificationType, operation: Operation): Promise<void> {
  const { messaging, config } = ctx.services;
  if (!messaging) return Promise.resolve();
  return publishNotification(messaging, config.topics.notifications, { type, operation }).then(
    () => undefined,
    (err: unknown) => {
      ctx.log.warn(`could not publish the ${type} notification`, {
        operation: operation.name,
        error: err,
      });
    },
  );
}

function page(records: OperationRecord[], nextPageToken: string) {
  return { operations: records.map((r) => r.operation), nextPageToken };
}

async function get(ctx: Context): Promise<void> {
  noQuery(ctx);
  const record = await ctx.services.store.get(ctx.name);
  sendJson(ctx.res, 200, record.operation);
}

async function listOperations(ctx: Context): Promise<void> {
  const request = parseOrInvalid(ListOperationsRequestSchema, ctx.query, 'list request');
  const result = await ctx.services.store.list(request);
  sendJson(ctx.res, 200, page(result.operations, result.nextPageToken));
}

async function listChildren(ctx: Context): Promise<void> {
  const request = parseOrInvalid(ListChildrenRequestSchema, ctx.query, 'children request');
  const result = await ctx.services.store.listChildren(ctx.name, request);
  sendJson(ctx.res, 200, page(result.operations, result.nextPageToken));
}

async function traverse(ctx: Context): Promise<void> {
  const request = parseOrInvalid(TraverseRequestSchema, ctx.query, 'traverse request');
  const tree = await ctx.services.store.traverse(ctx.name, request);
  sendJson(ctx.res, 200, tree);
}

async function getParent(ctx: Context): Promise<void> {
  noQuery(ctx);
  const parent = await ctx.services.store.getParent(ctx.name);
  sendJson(ctx.res, 200, parent === undefined ? {} : { parent });
}

async function create(ctx: Context): Promise<void> {
  noQuery(ctx);
  const request = parseOrInvalid(CreateOperationRequestSchema, jsonBody(ctx.req), 'create request');
  const header = ctx.req.headers[PARENT_HEADER];
  const headerParent = Array.isArray(header) ? header[0] : header;
  let parent = request.parent;
  if (parent === undefined && headerParent !== undefined && headerParent !== '') {
    const parsed = OperationNameSchema.safeParse(headerParent);
    if (!parsed.success) {
      throw new LroError(
        Code.INVALID_ARGUMENT,
        `invalid ${PARENT_HEADER} header ${JSON.stringify(headerParent.slice(0, 100))}: must be "operations/{id}"`,
      );
    }
    parent = parsed.data;
  }
  const record = await ctx.services.store.create({
    ...(request.operationId !== undefined ? { id: request.operationId } : {}),
    ...(parent !== undefined ? { parent } : {}),
    ...(request.metadata !== undefined ? { metadata: request.metadata } : {}),
    ...(request.requestId !== undefined ? { requestId: request.requestId } : {}),
  });
  void publish(ctx, 'created', record.operation);
  sendJson(ctx.res, 200, record.operation);
}

async function remove(ctx: Context): Promise<void> {
  noQuery(ctx);
  const record = await ctx.services.store.get(ctx.name);
  await ctx.services.store.delete(ctx.name);
  await publish(ctx, 'deleted', record.operation);
  sendJson(ctx.res, 200, {});
}

async function cancel(ctx: Context): Promise<void> {
  noQuery(ctx);
  parseOrInvalid(CancelRequestSchema, jsonBody(ctx.req), 'cancel request');
  const result = await ctx.services.store.requestCancel(ctx.name);
  // Workers learn of the request from this notification; one that misses it polls. A repeated
  // cancel of a running operation announces it again, in case the first announcement was lost.
  if (!result.operation.done) await publish(ctx, 'cancelRequested', result.operation);
  ctx.log.info(result.applied ? 'cancellation requested' : 'cancellation already requested', {
    operation: ctx.name,
    done: result.operation.done,
  });
  sendJson(ctx.res, 200, {});
}

/** The requested timeout capped at the maximum, or the default. */
function timeoutOf(config: Config, requested: number | undefined): number {
  return Math.min(requested ?? config.wait.defaultTimeoutMs, config.wait.maxTimeoutMs);
}

async function wait(ctx: Context): Promise<void> {
  noQuery(ctx);
  const request = parseOrInvalid(WaitOperationRequestSchema, jsonBody(ctx.req), 'wait request');
  const timeoutMs = timeoutOf(ctx.services.config, request.timeout);
  const outcome = await ctx.services.waiter.wait(ctx.name, { timeoutMs, signal: ctx.signal });
  if (outcome.reason === 'aborted') return;
  // How many Bigtable reads this wait cost (one on the notification path); for benchmarks.
  ctx.res.setHeader('x-lro-bigtable-reads', String(outcome.reads));
  sendJson(ctx.res, 200, outcome.operation);
}

async function batchWait(ctx: Context): Promise<void> {
  noQuery(ctx);
  const request = parseOrInvalid(BatchWaitRequestSchema, jsonBody(ctx.req), 'batch wait request');
  const timeoutMs = timeoutOf(ctx.services.config, request.timeout);
  const operations = await ctx.services.waiter.waitAll(request.names, {
    timeoutMs,
    signal: ctx.signal,
  });
  if (ctx.signal.aborted) return;
  sendJson(ctx.res, 200, { operations });
}

/**
 * Server-sent events: `event: operation` with the Operation JSON, first the current state and
 * then each change, ending after the done state. A stream ends at the maximum wait timeout
 * too (with `event: timeout`); clients reconnect. Comment lines keep idle connections alive.
 */
async function watch(ctx: Context): Promise<void> {
  noQuery(ctx);
  const { res } = ctx;
  // The operation must exist before the stream starts, so that a missing one is a plain 404.
  await ctx.services.store.get(ctx.name);
  const send = (event: string, data: unknown) => {
    if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    res.statusCode = 200;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
  };
  const heartbeat = setInterval(() => {
    if (started && !res.writableEnded) res.write(': keep-alive\n\n');
  }, defaults.watchHeartbeatMs);
  try {
    const outcome = await ctx.services.waiter.follow(ctx.name, {
      deadline: Date.now() + ctx.services.config.wait.maxTimeoutMs,
      signal: ctx.signal,
      onChange: (operation) => {
        start();
        send('operation', operation);
      },
    });
    start();
    if (outcome.reason === 'timeout') send('timeout', { name: ctx.name });
    res.end();
  } catch (err) {
    if (!started) throw err;
    send('error', toLroError(err).toJSON());
    res.end();
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * The handler of a function instance: config, store, messaging and the notification hub are
 * built on the first request and kept; SIGTERM removes the hub's subscription before the
 * framework's own handler exits the process.
 */
export function instanceApiHandler(
  load: () => Config,
  open: (config: Config) => OperationStore,
): ApiHandler {
  let services: ApiServices | undefined;
  const build = (): ApiServices => {
    if (services) return services;
    const config = load();
    const store = open(config);
    const messaging = new Messaging(config);
    const hub = config.wait.notifications
      ? new NotificationHub(messaging, config.topics.notifications)
      : undefined;
    const waiter = new Waiter({ store, ...(hub ? { hub } : {}) });
    services = { config, store, waiter, messaging };
    onShutdown(async () => {
      await hub?.close();
      await Promise.allSettled([store.close(), messaging.close()]);
    });
    defaultLog.info('operations API ready', {
      notifications: config.wait.notifications,
      subscription: hub?.subscriptionName,
    });
    return services;
  };
  return createApiHandler(build);
}

/** Runs `cleanup` (bounded in time) on SIGTERM, then the SIGTERM handlers registered before. */
function onShutdown(cleanup: () => Promise<void>): void {
  const previous = process.listeners('SIGTERM');
  for (const listener of previous) process.removeListener('SIGTERM', listener);
  process.once('SIGTERM', () => {
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, defaults.shutdownCleanupMaxMs);
    });
    const cleaned = cleanup().catch((err: unknown) => {
      defaultLog.warn('clean-up on shutdown failed', { error: err });
    });
    void Promise.race([cleaned, bounded]).then(() => {
      clearTimeout(timer);
      if (previous.length === 0) process.exit(0);
      for (const listener of previous) listener('SIGTERM');
    });
  });
}
