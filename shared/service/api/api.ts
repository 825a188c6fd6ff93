/**
 * The operations API (docs/contracts.md, contract 1): the google.longrunning REST mapping plus the
 * project's extensions, as one `(req, res)` handler over Node's HTTP types. The routing table
 * (`apiRoutes`) lives here; the handlers in operations.ts, waits.ts and dead-letters.ts; routing
 * and the request lifecycle (validation, errors, logs) in http/router.ts and http/lifecycle.ts;
 * waiting in wait/waiter.ts. docs/openapi.yaml is generated from the routing table.
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
 *   /v1/deadLetters...                        dead letters (dead-letters.ts)
 *   GET    /console/...                      the web console, outside the table (console.ts)
 */
import { z } from 'zod';
import { CANCEL_REQUESTED_HEADER } from '../../sdk/cancel-requested.js';
import { Code, LroError } from '../../sdk/errors.js';
import {
  BatchWaitRequestSchema,
  BatchWaitResponseSchema,
  CreateOperationRequestSchema,
  GetParentResponseSchema,
  OperationNodeSchema,
  OperationSchema,
  toOperationName,
  WaitOperationRequestSchema,
} from '../../sdk/model.js';
import {
  ListChildrenQuerySchema,
  ListOperationsPageSchema,
  ListOperationsQuerySchema,
  OperationTimesSchema,
} from '../../sdk/operation-times.js';
import { PARENT_HEADER } from '../../sdk/parent-header.js';
import { createRequestHandler, type RequestHandler } from '../http/lifecycle.js';
import { compileRoutes, type Resolve } from '../http/router.js';
import { HistoryRecordSchema } from '../store/event-history.js';
import { consoleRoute } from './console.js';
import { deadLetterRoutes } from './dead-letters.js';
import {
  cancel,
  create,
  get,
  getHistory,
  getParent,
  getTimes,
  listChildren,
  listOperations,
  remove,
  TraverseRequestSchema,
  traverse,
} from './operations.js';
import type { ApiRoute, ApiServices } from './services.js';
import { batchWait, wait, watch } from './waits.js';

export type { ApiRoute, ApiServices } from './services.js';

const CancelRequestSchema = z.strictObject({});

/** The reply of DeleteOperation and CancelOperation. */
const EmptySchema = z.strictObject({});

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

/**
 * The routes of a path (one per method), or undefined when no template matches. Accepts `:`
 * percent-encoded (`%3A`) too, and a trailing `/`.
 */
export const resolve: Resolve<ApiServices> = compileRoutes(apiRoutes, nameOf);

function nameOf(id: string): string {
  if (id === '') throw new LroError(Code.INVALID_ARGUMENT, 'the operation ID is empty');
  return toOperationName(`operations/${id}`);
}

export type ApiHandler = RequestHandler;

/**
 * The API handler: the routing table, and the web console under /console (console.ts).
 * `services` is called on each request and may build them on first use (runtime/instance.ts).
 */
export function createApiHandler(services: () => Promise<ApiServices> | ApiServices): ApiHandler {
  return createRequestHandler({
    resolve,
    services,
    mounts: [{ path: '/console', serve: consoleRoute }],
  });
}
