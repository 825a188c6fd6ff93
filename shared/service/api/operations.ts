/**
 * The handlers of the operations routes (api.ts's table): get, list, create, delete, cancel, the
 * tree (traverse, getParent, children), times and history. Each reads or writes the store, and
 * announces what it changed in the background (announcer.ts); answers never wait for Pub/Sub.
 */
import { z } from 'zod';
import { CANCEL_REQUESTED_HEADER, cancelRequestedValue } from '../../sdk/cancel-requested.js';
import { resolveLimits } from '../../sdk/deadlines.js';
import { defaults } from '../../sdk/defaults.js';
import { formatDuration } from '../../sdk/duration.js';
import { Code, LroError } from '../../sdk/errors.js';
import {
  type CreateOperationRequest,
  type GetParentResponse,
  type Operation,
  OperationNameSchema,
} from '../../sdk/model.js';
import type { NotificationType } from '../../sdk/notifications.js';
import {
  type ListChildrenQuery,
  type ListOperationsQuery,
  type OperationTimes,
  TOTAL_SIZE_CAP,
} from '../../sdk/operation-times.js';
import { PARENT_HEADER } from '../../sdk/parent-header.js';
import { sendJson } from '../http/io.js';
import type { OperationRecord, OperationStore } from '../store/store.js';
import { announce } from './announcer.js';
import type { ApiContext } from './services.js';

/** The query of traverse. */
export const TraverseRequestSchema = z.strictObject({
  maxDepth: z.coerce
    .number()
    .int('must be an integer')
    .min(0, 'must not be negative')
    .max(defaults.traverseDepthMax, `must be at most ${defaults.traverseDepthMax}`)
    .default(defaults.traverseDepthDefault),
});

/** Announces a change in the background (announcer.ts): answers never wait for Pub/Sub. */
function publish(ctx: ApiContext, type: NotificationType, operation: Operation): void {
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

export async function getTimes(ctx: ApiContext): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  sendJson(ctx.res, 200, timesOf(record, ctx.services.config.retentionMs));
}

export async function getHistory(ctx: ApiContext): Promise<void> {
  sendJson(ctx.res, 200, await ctx.services.store.history(ctx.name));
}

export async function get(ctx: ApiContext): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  if (record.cancelRequestTime) {
    ctx.res.setHeader(CANCEL_REQUESTED_HEADER, cancelRequestedValue(record.cancelRequestTime));
  }
  sendJson(ctx.res, 200, record.operation);
}

export async function listOperations(ctx: ApiContext<ListOperationsQuery>): Promise<void> {
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

export async function listChildren(ctx: ApiContext<ListChildrenQuery>): Promise<void> {
  const { view, orderBy, ...options } = ctx.query;
  const result = await ctx.services.store.listChildren(
    ctx.name,
    orderBy === undefined ? options : { ...options, orderBy },
  );
  const { retentionMs } = ctx.services.config;
  sendJson(ctx.res, 200, page(result.operations, result.nextPageToken, view, retentionMs));
}

export async function traverse(
  ctx: ApiContext<z.output<typeof TraverseRequestSchema>>,
): Promise<void> {
  const tree = await ctx.services.store.traverse(ctx.name, ctx.query);
  sendJson(ctx.res, 200, tree);
}

export async function getParent(ctx: ApiContext): Promise<void> {
  const parent = await ctx.services.store.getParent(ctx.name);
  const reply: GetParentResponse = parent === undefined ? {} : { parent };
  sendJson(ctx.res, 200, reply);
}

export async function create(ctx: ApiContext<unknown, CreateOperationRequest>): Promise<void> {
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

export async function remove(ctx: ApiContext): Promise<void> {
  const record = await ctx.services.store.get(ctx.name);
  await ctx.services.store.delete(ctx.name);
  publish(ctx, 'deleted', record.operation);
  sendJson(ctx.res, 200, {});
}

export async function cancel(ctx: ApiContext): Promise<void> {
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
