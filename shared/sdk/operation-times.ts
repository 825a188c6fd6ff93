/**
 * Operator views (docs/contracts.md, contract 9): the times of an operation, which the Operation
 * Google's clients read does not carry, and the list order. They come as a sibling resource
 * (`GET /v1/operations/{id}/times`) and, for a whole page, with `view=FULL` on ListOperations and
 * children: a `times` array beside `operations`, entry i for operation i. Nothing is added to the
 * Operation JSON itself.
 */
import { z } from 'zod';
import {
  ListChildrenRequestSchema,
  ListOperationsRequestSchema,
  ListOperationsResponseSchema,
  OperationNameSchema,
} from './model.js';

const time = (what: string) => z.string().describe(`${what} (RFC 3339, UTC).`);

/** The times of one operation. */
export const OperationTimesSchema = z.strictObject({
  name: OperationNameSchema,
  createTime: time('When the operation was created'),
  updateTime: time(
    'When it last changed: creation, progress, cancellation request or its end (heartbeats do not count)',
  ),
  endTime: time('When it ended (done); absent while it runs').optional(),
  expireTime: time(
    'When it will be gone (its end plus the retention); absent while it runs',
  ).optional(),
  deadline: time('When it must be done, if it has a deadline').optional(),
  heartbeatTimeout: z
    .string()
    .describe('Its heartbeat timeout (a Duration such as "60s"), if it has one.')
    .optional(),
  lastHeartbeatTime: time('Its last heartbeat or progress event, if any').optional(),
  cancelRequestTime: time('When cancellation was requested, if it was').optional(),
  parent: OperationNameSchema.describe("The parent operation's name, if any.").optional(),
});
export type OperationTimes = z.infer<typeof OperationTimesSchema>;

export type OrderBy = 'create_time desc' | 'create_time asc';

/**
 * The `orderBy` query parameter (AIP-132): `create_time desc` (newest first), `create_time` or
 * `create_time asc` (oldest first), `name` (the default order: by ID). `createTime` is accepted
 * for `create_time`. Normalised; undefined for the default order.
 */
export const OrderBySchema = z
  .string()
  .max(64)
  .transform((text, ctx): OrderBy | undefined => {
    const words = text.trim().split(/\s+/).filter(Boolean);
    const [field, direction = 'asc', ...rest] = words;
    const dir = direction.toLowerCase();
    if (field === undefined) return undefined;
    if (rest.length === 0 && (dir === 'asc' || dir === 'desc')) {
      if (field === 'create_time' || field === 'createTime') return `create_time ${dir}`;
      if (field === 'name' && dir === 'asc') return undefined;
    }
    ctx.addIssue({
      code: 'custom',
      message: `must be "create_time desc", "create_time asc" or "name", got ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  })
  .describe(
    'AIP-132 order: "create_time desc" (newest first), "create_time asc" (oldest first) or "name" (by ID, the default).',
  );

/**
 * The `view` query parameter (AIP-157): `BASIC` (the default) answers the operations alone;
 * `FULL` adds `times`, one OperationTimes per operation, in the same order.
 */
export const ListViewSchema = z
  .enum(['BASIC', 'FULL', 'OPERATION_VIEW_UNSPECIFIED'])
  .transform((view) => (view === 'FULL' ? 'FULL' : 'BASIC'))
  .describe(
    'BASIC (default): operations only. FULL: also `times`, the OperationTimes of each operation, in the same order.',
  );

/** How far `showTotalSize` counts at most. */
export const TOTAL_SIZE_CAP = 1000;

/** Query of `GET /v1/operations`: google.longrunning's, plus `orderBy`, `view`, `showTotalSize`. */
export const ListOperationsQuerySchema = ListOperationsRequestSchema.extend({
  orderBy: OrderBySchema.optional(),
  view: ListViewSchema.optional(),
  showTotalSize: z
    .enum(['true', 'false'])
    .transform((text) => text === 'true')
    .optional()
    .describe(
      `"true" adds totalSize: how many operations match the filter, counted up to ${TOTAL_SIZE_CAP} (with totalSizeCapped when there are more, or when counting stopped early).`,
    ),
});
export type ListOperationsQuery = z.output<typeof ListOperationsQuerySchema>;

/** Query of `GET /v1/operations/{id}/children`, plus `orderBy` and `view`. */
export const ListChildrenQuerySchema = ListChildrenRequestSchema.extend({
  orderBy: OrderBySchema.optional(),
  view: ListViewSchema.optional(),
});
export type ListChildrenQuery = z.output<typeof ListChildrenQuerySchema>;

/** A list or children page; `times` only with `view=FULL`. */
export const ListOperationsPageSchema = ListOperationsResponseSchema.extend({
  totalSize: z
    .number()
    .int()
    .optional()
    .describe('With showTotalSize=true: how many operations match (exact unless totalSizeCapped).'),
  totalSizeCapped: z
    .boolean()
    .optional()
    .describe(
      'With showTotalSize=true: true when at least totalSize match (more were not counted).',
    ),
  times: z
    .array(OperationTimesSchema)
    .optional()
    .describe('With view=FULL: the times of each operation, in the order of `operations`.'),
});
