/**
 * The operations API (public contract 1): the google.longrunning REST mapping plus the
 * project's extensions, as one `(req, res)` handler over Node's HTTP types. The routing table
 * (`apiRoutes`) and the handlers live here; body and query parsing and error bodies in http.ts;
 * waiting in waiter.ts. docs/openapi.yaml is generated from the routing table.
 *
 *   GET    /v1/operations                    ListOperations (filter, pageSize, pageToken, orderBy,
 *                                             view)
 *   POST   /v1/operations                    create {operationId?, parent?, metadata?, requestId?,
 *                                             deadline?, heartbeatTimeout?}
 *   POST   /v1/operations:batchWait          {names, timeout?} -> {operations}
 *   GET    /v1/operations/{id}               GetOperation
 *   DELETE /v1/operations/{id}               DeleteOperation -> {}
 *   POST   /v1/operations/{id}:wait          WaitOperation {timeout?}
 *   POST   /v1/operations/{id}:cancel        CancelOperation {} -> {}
 *   GET    /v1/operations/{id}:watch         server-sent events, one per change, until done
 *   GET    /v1/operations/{id}:traverse      the tree of children (maxDepth)
 *   GET    /v1/operations/{id}:getParent     {parent?}
 *   GET    /v1/operations/{id}/children      immediate children (pageSize, pageToken, orderBy, view)
 *   GET    /v1/operations/{id}/times         the operation's times (operation-times.ts)
 *   GET    /v1/operations/{id}/history       the events the subscriber handled (event-history.ts)
 *   /v1/deadLetters...                        dead letters (dead-letter-api.ts)
 *   GET    /console/...                      the web console, outside the table (console-files.ts)
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { CANCEL_REQUESTED_HEADER, cancelRequestedValue } from '../../sdk/cancel-requested.js';
import { resolveLimits } from '../../sdk/deadlines.js';
import { defaults } from '../../sdk/defaults.js';
import { formatDuration } from '../../sdk/duration.js';
import { Code, LroError, toLroError } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import { Messaging } from '../../sdk/messaging.js';
import {
  BatchWaitRequestSchema,
  type CreateOperationRequest,
  CreateOperationRequestSchema,
  type Operation,
  OperationNameSchema,
  type OperationNode,
  OperationSchema,
  parseOrInvalid,
  toOperationName,
  WaitOperationRequestSchema,
} from '../../sdk/model.js';
import { formatTiming, type NotificationType } from '../../sdk/notifications.js';
import {
  type ListChildrenQuery,
  ListChildrenQuerySchema,
  ListOperationsPageSchema,
  type ListOperationsQuery,
  ListOperationsQuerySchema,
  type OperationTimes,
  OperationTimesSchema,
  TOTAL_SIZE_CAP,
} from '../../sdk/operation-times.js';
import { crossSiteRefusal } from '../http/cross-site.js';
import { leaveFrameworkDomain } from '../http/framework-domain.js';
import {
  type ApiRequest,
  jsonBody,
  methodNotAllowed,
  queryOf,
  routeNotFound,
  sendError,
  sendJson,
} from '../http/io.js';
import type { Config } from '../runtime/config.js';
import { onShutdown, shuttingDown } from '../runtime/shutdown.js';
import { traceFields, withFields } from '../runtime/trace.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { Stores } from '../store/bigtable/stores.js';
import { HistoryRecordSchema } from '../store/event-history.js';
import type { OperationRecord, OperationStore } from '../store/store.js';
import { NotificationHub, Waiter } from '../wait/waiter.js';
import { announce } from './announcer.js';
import { consoleRoute } from './console.js';
import { deadLetterRoutes } from './dead-letters.js';

/** The header naming the parent operation of operations created by this request. */
export const PARENT_HEADER = 'x-lro-parent';

export interface ApiServices {
  config: Config;
  store: OperationStore;
  waiter: Waiter;
  /** Publishes notifications (cancellation requests, creations, deletions) when present. */
  messaging?: Messaging;
  /** Kept dead letters (the /v1/deadLetters routes answer UNIMPLEMENTED without). */
  deadLetters?: DeadLetterStore;
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

/** The reply of DeleteOperation and CancelOperation. */
const EmptySchema = z.strictObject({});
/** A node of the tree that traverse returns. */
export const OperationNodeSchema: z.ZodType<OperationNode> = z.strictObject({
  operation: OperationNameSchema,
  get childrenOperations() {
    return z.array(OperationNodeSchema);
  },
});
const GetParentResponseSchema = z.strictObject({ parent: OperationNameSchema.optional() });
const BatchWaitResponseSchema = z.strictObject({
  operations: z.array(OperationSchema),
  truncated: z
    .array(OperationNameSchema)
    .optional()
    .describe(
      'Operations answered as {name, done} only, because their full states would pass the ' +
        "response's byte budget (LRO_RESPONSE_MAX_BYTES); GET them one by one.",
    ),
});

/**
 * One route of the API. The dispatcher validates the query with `query` (none accepted when it
 * is absent) and then the JSON body with `body` (not read when absent), and hands the parsed
 * values to the handler; docs/openapi.yaml is generated from these entries (npm run openapi),
 * so a route is described by the schemas that validate it.
 */
export interface ApiRoute<Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'DELETE';
  /**
   * Path template. A `{param}` is one path segment without `/` or `:`; under /v1/operations/,
   * `{id}` is an operation ID and the handler gets the operation's name as `ctx.name`.
   */
  path: string;
  /**
   * Schemas of path parameters other than an operation's `{id}` (documentation: the handler
   * validates them).
   */
  params?: Record<string, z.ZodType>;
  /** The method's name (OpenAPI operationId): google.longrunning's where there is one. */
  operationId: string;
  summary: string;
  query?: z.ZodType<Q, unknown>;
  /** Named in error messages: "invalid <queryName>: ..." (default "query"). */
  queryName?: string;
  body?: z.ZodType<B, unknown>;
  /** Named in error messages: "invalid <bodyName>: ..." (default "request body"). */
  bodyName?: string;
  /** Headers the route reads, with their meaning (documentation). */
  headers?: Record<string, string>;
  /** Headers the 200 reply may carry, with their meaning (documentation). */
  responseHeaders?: Record<string, string>;
  /** The 200 reply: a schema, or server-sent events. */
  response: z.ZodType | { eventStream: string };
  handler: (ctx: Context<Q, B>) => Promise<void>;
}

/** A route with its input types checked against its handler, stored without them. */
function route<Q = Record<string, never>, B = undefined>(r: ApiRoute<Q, B>): ApiRoute {
  return r as unknown as ApiRoute;
}

/**
 * The routing table: every route the API answers, in matching order. Add a route here (and
 * run `npm run openapi`); the OpenAPI test fails when a route is missing from docs/openapi.yaml.
 */
export const apiRoutes: readonly ApiRoute[] = [
  route({
    method: 'GET',
    path: '/v1/operations',
    operationId: 'ListOperations',
    summary:
      'Lists operations matching the filter, one page at a time: by name, or newest or oldest first (orderBy); view=FULL adds their times.',
    query: ListOperationsQuerySchema,
    queryName: 'list request',
    response: ListOperationsPageSchema,
    handler: listOperations,
  }),
  route({
    method: 'POST',
    path: '/v1/operations',
    operationId: 'CreateOperation',
    summary: 'Creates an operation (idempotent for a repeated requestId).',
    body: CreateOperationRequestSchema,
    bodyName: 'create request',
    headers: {
      [PARENT_HEADER]:
        "The parent operation's name; when the body names one too, both must be the same.",
    },
    response: OperationSchema,
    handler: create,
  }),
  route({
    method: 'POST',
    path: '/v1/operations:batchWait',
    operationId: 'BatchWaitOperations',
    summary: 'Waits until every named operation is done or the timeout passes; the latest states.',
    body: BatchWaitRequestSchema,
    bodyName: 'batch wait request',
    response: BatchWaitResponseSchema,
    handler: batchWait,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}',
    operationId: 'GetOperation',
    summary: 'The latest state of an operation.',
    responseHeaders: {
      [CANCEL_REQUESTED_HEADER]:
        'When cancellation was requested (RFC 3339), once `:cancel` was called; absent otherwise. The Operation JSON has no such field: workers that speak only HTTP poll this.',
    },
    response: OperationSchema,
    handler: get,
  }),
  route({
    method: 'DELETE',
    path: '/v1/operations/{id}',
    operationId: 'DeleteOperation',
    summary: 'Deletes an operation (it is no longer listed nor readable).',
    response: EmptySchema,
    handler: remove,
  }),
  route({
    method: 'POST',
    path: '/v1/operations/{id}:wait',
    operationId: 'WaitOperation',
    summary: 'Waits until the operation is done or the timeout passes; the latest state.',
    body: WaitOperationRequestSchema,
    bodyName: 'wait request',
    response: OperationSchema,
    handler: wait,
  }),
  route({
    method: 'POST',
    path: '/v1/operations/{id}:cancel',
    operationId: 'CancelOperation',
    summary: 'Requests cancellation; workers are told, and the operation ends CANCELLED.',
    body: CancelRequestSchema,
    bodyName: 'cancel request',
    response: EmptySchema,
    handler: cancel,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}:watch',
    operationId: 'WatchOperation',
    summary: 'Server-sent events: the current state, then every change, until done.',
    response: {
      eventStream:
        '`event: operation` with the Operation JSON for the current state and each change, ' +
        'ending after the done state; `event: timeout` when the stream reached the maximum ' +
        'wait (reconnect); `event: error` with a Google error body.',
    },
    handler: watch,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}:traverse',
    operationId: 'TraverseOperation',
    summary: 'The operation and its descendants, to maxDepth levels.',
    query: TraverseRequestSchema,
    queryName: 'traverse request',
    response: OperationNodeSchema,
    handler: traverse,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}:getParent',
    operationId: 'GetParentOperation',
    summary: "The parent operation's name; `{}` for a root operation.",
    response: GetParentResponseSchema,
    handler: getParent,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}/children',
    operationId: 'ListChildOperations',
    summary:
      'Lists the immediate children of an operation, one page at a time: by name, or newest or oldest first (orderBy); view=FULL adds their times.',
    query: ListChildrenQuerySchema,
    queryName: 'children request',
    response: ListOperationsPageSchema,
    handler: listChildren,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}/times',
    operationId: 'GetOperationTimes',
    summary:
      'When the operation was created, last changed, ended; its deadline, heartbeat timeout, last heartbeat and cancellation request.',
    response: OperationTimesSchema,
    handler: getTimes,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}/history',
    operationId: 'GetOperationHistory',
    summary:
      'The events the subscriber handled for the operation, newest first, with what each did (the last 200, heartbeat runs collapsed).',
    response: HistoryRecordSchema,
    handler: getHistory,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}/parent',
    operationId: 'GetParentOperationAlias',
    summary: 'Same as :getParent.',
    response: GetParentResponseSchema,
    handler: getParent,
  }),
  route({
    method: 'GET',
    path: '/v1/operations/{id}/tree',
    operationId: 'TraverseOperationAlias',
    summary: 'Same as :traverse.',
    query: TraverseRequestSchema,
    queryName: 'traverse request',
    response: OperationNodeSchema,
    handler: traverse,
  }),
  ...deadLetterRoutes,
];

interface CompiledRoute {
  route: ApiRoute;
  pattern: RegExp;
  params: string[];
}

const compiledRoutes: CompiledRoute[] = apiRoutes.map((r) => {
  const params: string[] = [];
  const source = r.path
    .split(/(\{[A-Za-z]+\})/)
    .map((part) => {
      const param = /^\{([A-Za-z]+)\}$/.exec(part);
      if (!param) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      params.push(param[1] as string);
      return '([^/:]*)';
    })
    .join('');
  return { route: r, pattern: new RegExp(`^${source}$`), params };
});

interface Match {
  /** The routes of the matched path template, one per method. */
  routes: ApiRoute[];
  params: Record<string, string>;
  /** The operation name for routes under /v1/operations/{id}. */
  name?: string;
}

interface Context<Q = unknown, B = unknown> {
  req: ApiRequest;
  res: ServerResponse;
  /** The query, parsed by the route's schema. */
  query: Q;
  /** The JSON body, parsed by the route's schema. */
  body: B;
  /** Path parameters, as they appear in the path. */
  params: Record<string, string>;
  name: string;
  services: ApiServices;
  signal: AbortSignal;
  log: Logger;
}

/** The API handler; `services` is called on each request and may build them on first use. */
export function createApiHandler(services: () => Promise<ApiServices> | ApiServices): ApiHandler {
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
      if (url.pathname === '/console' || url.pathname.startsWith('/console/')) {
        return await consoleRoute(method, url.pathname, res);
      }
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
      logger.info(`${method} ${url.pathname} ${res.statusCode}`, fields);
    }
  };
}

/**
 * The routes of a path (one per method), or undefined when no template matches. Accepts `:`
 * percent-encoded (`%3A`) too, and a trailing `/`.
 */
export function resolve(pathname: string): Match | undefined {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    throw new LroError(Code.INVALID_ARGUMENT, 'malformed percent-encoding in the path');
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  let template: string | undefined;
  const match: Match = { routes: [], params: {} };
  for (const compiled of compiledRoutes) {
    if (template !== undefined) {
      if (compiled.route.path === template) match.routes.push(compiled.route);
      continue;
    }
    const found = compiled.pattern.exec(path);
    if (!found) continue;
    template = compiled.route.path;
    match.routes.push(compiled.route);
    compiled.params.forEach((param, i) => {
      match.params[param] = found[i + 1] as string;
    });
  }
  if (template === undefined) return undefined;
  const id = match.params.id;
  if (id !== undefined && template.startsWith('/v1/operations/')) match.name = nameOf(id);
  return match;
}

function nameOf(id: string): string {
  if (id === '') throw new LroError(Code.INVALID_ARGUMENT, 'the operation ID is empty');
  return toOperationName(`operations/${id}`);
}

function headerOf(req: ApiRequest, name: string): string | undefined {
  const header = req.headers[name];
  return Array.isArray(header) ? header[0] : header;
}

/** Announces a change in the background (announcer.ts): answers never wait for Pub/Sub. */
function publish(ctx: Context, type: NotificationType, operation: Operation): void {
  const { messaging, config } = ctx.services;
  if (!messaging) return;
  const topics = { notifications: config.topics.notifications, wakeups: config.topics.wakeups };
  announce(messaging, topics, { type, operation }, ctx.log);
}

function page(
  records: OperationRecord[],
  nextPageToken: string,
  view: 'BASIC' | 'FULL' | undefined,
  retentionMs: number,
) {
  const operations = records.map((r) => r.operation);
  if (view !== 'FULL') return { operations, nextPageToken };
  return { operations, nextPageToken, times: records.map((r) => timesOf(r, retentionMs)) };
}

/** The times of an operation as the API shows them. */
export function timesOf(record: OperationRecord, retentionMs: number): OperationTimes {
  const times: OperationTimes = {
    name: record.operation.name,
    createTime: record.createTime.toISOString(),
    updateTime: record.updateTime.toISOString(),
  };
  if (record.doneTime) {
    times.endTime = record.doneTime.toISOString();
    times.expireTime = new Date(record.doneTime.getTime() + retentionMs).toISOString();
  }
  if (record.deadline) times.deadline = record.deadline.toISOString();
  if (record.heartbeatTimeoutMs !== undefined) {
    times.heartbeatTimeout = formatDuration(record.heartbeatTimeoutMs);
  }
  if (record.lastHeartbeatTime) times.lastHeartbeatTime = record.lastHeartbeatTime.toISOString();
  if (record.cancelRequestTime) times.cancelRequestTime = record.cancelRequestTime.toISOString();
  if (record.parent !== undefined) times.parent = record.parent;
  return times;
}

async function getTimes(ctx: Context): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  sendJson(ctx.res, 200, timesOf(record, ctx.services.config.retentionMs));
}

async function getHistory(ctx: Context): Promise<void> {
  sendJson(ctx.res, 200, await ctx.services.store.history(ctx.name));
}

async function get(ctx: Context): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  if (record.cancelRequestTime) {
    ctx.res.setHeader(CANCEL_REQUESTED_HEADER, cancelRequestedValue(record.cancelRequestTime));
  }
  sendJson(ctx.res, 200, record.operation);
}

async function listOperations(ctx: Context<ListOperationsQuery>): Promise<void> {
  const { view, orderBy, showTotalSize, ...options } = ctx.query;
  const [result, total] = await Promise.all([
    ctx.services.store.list(orderBy === undefined ? options : { ...options, orderBy }),
    showTotalSize ? totalSize(ctx.services.store, options.filter) : undefined,
  ]);
  const { retentionMs } = ctx.services.config;
  sendJson(ctx.res, 200, {
    ...page(result.operations, result.nextPageToken, view, retentionMs),
    ...total,
  });
}

/**
 * How many operations match a filter, counted by listing one page of TOTAL_SIZE_CAP + 1 (a name
 * prefix reads only its key range): capped when more match, or when the list stopped early.
 */
async function totalSize(
  store: OperationStore,
  filter: string,
): Promise<{ totalSize: number; totalSizeCapped?: true }> {
  const counted = await store.list({ filter, pageSize: TOTAL_SIZE_CAP + 1, pageToken: '' });
  const n = counted.operations.length;
  if (n > TOTAL_SIZE_CAP) return { totalSize: TOTAL_SIZE_CAP, totalSizeCapped: true };
  return counted.nextPageToken ? { totalSize: n, totalSizeCapped: true } : { totalSize: n };
}

async function listChildren(ctx: Context<ListChildrenQuery>): Promise<void> {
  const { view, orderBy, ...options } = ctx.query;
  const result = await ctx.services.store.listChildren(
    ctx.name,
    orderBy === undefined ? options : { ...options, orderBy },
  );
  const { retentionMs } = ctx.services.config;
  sendJson(ctx.res, 200, page(result.operations, result.nextPageToken, view, retentionMs));
}

async function traverse(ctx: Context<z.output<typeof TraverseRequestSchema>>): Promise<void> {
  const tree = await ctx.services.store.traverse(ctx.name, ctx.query);
  sendJson(ctx.res, 200, tree);
}

async function getParent(ctx: Context): Promise<void> {
  const parent = await ctx.services.store.getParent(ctx.name);
  sendJson(ctx.res, 200, parent === undefined ? {} : { parent });
}

async function create(ctx: Context<unknown, CreateOperationRequest>): Promise<void> {
  const request = ctx.body;
  const header = ctx.req.headers[PARENT_HEADER];
  const headerParent = Array.isArray(header) ? header[0] : header;
  let parent = request.parent;
  if (headerParent !== undefined && headerParent !== '') {
    const parsed = OperationNameSchema.safeParse(headerParent);
    if (!parsed.success) {
      throw new LroError(
        Code.INVALID_ARGUMENT,
        `invalid ${PARENT_HEADER} header ${JSON.stringify(headerParent.slice(0, 100))}: must be "operations/{id}"`,
      );
    }
    // Both may be given only when they agree: neither silently wins over the other.
    if (parent !== undefined && parent !== parsed.data) {
      throw new LroError(
        Code.INVALID_ARGUMENT,
        `the body's parent ${parent} and the ${PARENT_HEADER} header ${parsed.data} disagree; send one`,
      );
    }
    parent = parsed.data;
  }
  const record = await ctx.services.store.create({
    ...(request.operationId !== undefined ? { id: request.operationId } : {}),
    ...(parent !== undefined ? { parent } : {}),
    ...(request.metadata !== undefined ? { metadata: request.metadata } : {}),
    ...(request.requestId !== undefined ? { requestId: request.requestId } : {}),
    ...resolveLimits(request, ctx.services.config.limits),
  });
  publish(ctx, 'created', record.operation);
  ctx.log.info('operation created', { operation: record.operation.name });
  sendJson(ctx.res, 200, record.operation);
}

async function remove(ctx: Context): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  await ctx.services.store.delete(ctx.name);
  publish(ctx, 'deleted', record.operation);
  sendJson(ctx.res, 200, {});
}

async function cancel(ctx: Context): Promise<void> {
  const result = await ctx.services.store.requestCancel(ctx.name);
  // Workers learn of the request from this notification; one that misses it polls. A repeated
  // cancel of a running operation announces it again, in case the first announcement was lost.
  if (!result.operation.done) publish(ctx, 'cancelRequested', result.operation);
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

async function wait(
  ctx: Context<unknown, z.output<typeof WaitOperationRequestSchema>>,
): Promise<void> {
  const timeoutMs = timeoutOf(ctx.services.config, ctx.body.timeout);
  const outcome = await ctx.services.waiter.wait(ctx.name, { timeoutMs, signal: ctx.signal });
  if (outcome.reason === 'aborted') return;
  // How many Bigtable reads this wait cost (the first and one on the wake-up); for benchmarks.
  ctx.res.setHeader('x-lro-bigtable-reads', String(outcome.reads));
  // Of those, the safety-net polls (none when the wake-up arrived).
  ctx.res.setHeader('x-lro-safety-net-polls', String(outcome.polls));
  // Where the wake-up's time went (notifications.ts); for benchmarks.
  if (outcome.timing) {
    ctx.res.setHeader(
      'x-lro-wake-timing',
      formatTiming({ ...outcome.timing, respondedAt: Date.now() }),
    );
  }
  sendJson(ctx.res, 200, outcome.operation);
}

async function batchWait(
  ctx: Context<unknown, z.output<typeof BatchWaitRequestSchema>>,
): Promise<void> {
  const timeoutMs = timeoutOf(ctx.services.config, ctx.body.timeout);
  const operations = await ctx.services.waiter.waitAll(ctx.body.names, {
    timeoutMs,
    signal: ctx.signal,
  });
  if (ctx.signal.aborted) return;
  sendJson(ctx.res, 200, withinBudget(operations, ctx.services.config.responseMaxBytes));
}

/**
 * A batch wait answer within a byte budget: in the order of the names, full states while they
 * fit; the ones that would pass it as `{name, done}`, listed in `truncated`.
 */
function withinBudget(operations: Operation[], maxBytes: number) {
  // Room for the envelope and every name in `truncated`.
  let left = maxBytes - 4096 - operations.reduce((n, op) => n + op.name.length + 3, 0);
  const truncated: string[] = [];
  const answered = operations.map((operation) => {
    const size = Buffer.byteLength(JSON.stringify(operation)) + 1;
    if (size <= left) {
      left -= size;
      return operation;
    }
    truncated.push(operation.name);
    return { name: operation.name, done: operation.done };
  });
  return truncated.length === 0 ? { operations: answered } : { operations: answered, truncated };
}

/**
 * Server-sent events: `event: operation` with the Operation JSON, first the current state and
 * then each change, ending after the done state. Each operation event has an `id:` naming that
 * state; a client that reconnects with `Last-Event-ID` is not sent the current state again when
 * it is the one it saw last. A stream ends at the maximum wait timeout too (with `event:
 * timeout`), and when the instance shuts down (with `event: end`, data `{name, reason:
 * "shutdown", resumable: true}`); clients reconnect. Comment lines keep idle connections alive.
 */
/** The event ID of an operation state: a digest of its JSON. */
function stateId(operation: Operation): string {
  return createHash('sha256').update(JSON.stringify(operation)).digest('base64url').slice(0, 16);
}

async function watch(ctx: Context): Promise<void> {
  const { res } = ctx;
  // The operation must exist before the stream starts, so that a missing one is a plain 404.
  await ctx.services.store.get(ctx.name);
  const send = (event: string, data: unknown, id?: string) => {
    const line = id === undefined ? '' : `id: ${id}\n`;
    if (!res.writableEnded) res.write(`${line}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const header = ctx.req.headers['last-event-id'];
  let lastEventId = Array.isArray(header) ? header[0] : header;
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
        const id = stateId(operation);
        if (id !== lastEventId) send('operation', operation, id);
        lastEventId = undefined;
      },
    });
    start();
    if (outcome.reason === 'timeout') send('timeout', { name: ctx.name });
    if (outcome.reason === 'shutdown') {
      send('end', { name: ctx.name, reason: 'shutdown', resumable: true });
    }
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
 * built on the first request and kept. On SIGTERM or SIGINT (shutdown.ts, when installed) pending
 * waits are answered with the latest state, watches end with `event: end`, then the hub's
 * subscription is deleted.
 */
export function instanceApiHandler(
  load: () => Config,
  open: (config: Config) => Stores,
): ApiHandler & { services(): ApiServices } {
  let services: ApiServices | undefined;
  const build = (): ApiServices => {
    if (services) return services;
    const config = load();
    const stores = open(config);
    const store = stores.operations;
    const messaging = new Messaging(config);
    // Waits follow the wake-ups; watches open a subscription on the notifications topic while
    // there are any (or poll), so an instance without a watch receives no full notification.
    const hub = config.wait.notifications
      ? new NotificationHub(messaging, config.topics.wakeups, { carries: 'wakeups' })
      : undefined;
    const watchHub =
      config.wait.notifications && config.wait.watchMode === 'subscription'
        ? new NotificationHub(messaging, config.topics.notifications, {
            subscriptionPrefix: `${config.topics.notifications.slice(0, 200)}-watch`,
            idleCloseMs: defaults.watchSubscriptionIdleMs,
          })
        : undefined;
    const every = defaults.watchPollIntervalMs;
    const waiter = new Waiter({
      store,
      ...(hub ? { hub } : {}),
      poll: { notifiedInitialMs: config.wait.safetyPollMs },
      ...(watchHub ? { watchHub } : {}),
      ...(config.wait.watchMode === 'poll'
        ? { watchPoll: { initialMs: every, notifiedInitialMs: every, multiplier: 1, maxMs: every } }
        : {}),
    });
    const { deadLetters } = stores;
    services = { config, store, waiter, messaging, deadLetters };
    // Pending waits are answered and watches ended first; then the listener's subscription goes.
    onShutdown('drain', () => waiter.endAll());
    onShutdown('close', async () => {
      await Promise.all([hub?.close(), watchHub?.close()]);
      await Promise.allSettled([stores.close(), messaging.close()]);
    });
    defaultLog.info('operations API ready', {
      notifications: config.wait.notifications,
      watchMode: config.wait.watchMode,
      subscription: hub?.subscriptionName,
    });
    return services;
  };
  return Object.assign(createApiHandler(build), { services: build });
}
