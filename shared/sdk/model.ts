/**
 * The operation model: zod schemas are the single source of the wire types (proto3 JSON of
 * google.longrunning.Operation, google.rpc.Status, google.protobuf.Any), operation names and IDs,
 * the API's request shapes and the replies that are not an Operation (batch wait, the operation
 * tree, the parent). The dead letters' are in dead-letters.ts.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DeadlineSchema, HeartbeatTimeoutSchema } from './deadlines.js';
import { defaults } from './defaults.js';
import { DurationMs } from './duration.js';
import { type Code, invalidArgument } from './errors.js';

/** google.protobuf.Any in JSON: an object with `@type` and the message's fields. */
export const AnySchema = z
  .object({
    '@type': z
      .string()
      .min(1)
      .max(2048)
      .regex(/^[^\s]+\/[^\s]+$/, 'must be a type URL such as "type.googleapis.com/pkg.Message"'),
  })
  .catchall(z.unknown());
export type Any = z.infer<typeof AnySchema>;

/** google.rpc.Status. */
export const StatusSchema = z.strictObject({
  code: z.number().int().min(0).max(16),
  message: z
    .string()
    .max(16 * 1024)
    .default(''),
  details: z.array(AnySchema).max(64).optional(),
});
export type Status = z.infer<typeof StatusSchema>;

/** A caller-chosen or generated operation ID. */
export const OperationIdSchema = z
  .string()
  .regex(defaults.operationIdPattern, 'must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');

export const OPERATIONS_PREFIX = 'operations/';

/** An operation name: `operations/{id}`. */
export const OperationNameSchema = z
  .string()
  .max(OPERATIONS_PREFIX.length + 63)
  .refine(
    (name) =>
      name.startsWith(OPERATIONS_PREFIX) &&
      defaults.operationIdPattern.test(name.slice(OPERATIONS_PREFIX.length)),
    'must be "operations/{id}" with a valid ID',
  );

/** google.longrunning.Operation. */
export const OperationSchema = z.strictObject({
  name: OperationNameSchema,
  metadata: AnySchema.optional(),
  done: z.boolean(),
  error: StatusSchema.optional(),
  response: AnySchema.optional(),
});
export type Operation = z.infer<typeof OperationSchema>;

export function operationName(id: string): string {
  return `${OPERATIONS_PREFIX}${id}`;
}

/** The ID of a valid operation name; INVALID_ARGUMENT otherwise. */
export function operationIdOf(name: string): string {
  if (!OperationNameSchema.safeParse(name).success) {
    throw invalidArgument(
      `invalid operation name ${JSON.stringify(name)}: ${'must be "operations/{id}"'}`,
    );
  }
  return name.slice(OPERATIONS_PREFIX.length);
}

/** Accepts an ID or a name and returns the name; INVALID_ARGUMENT when it is neither. */
export function toOperationName(idOrName: string): string {
  const name = idOrName.startsWith(OPERATIONS_PREFIX) ? idOrName : operationName(idOrName);
  operationIdOf(name);
  return name;
}

export function newOperationId(): string {
  return randomUUID();
}

/** The body of `POST /v1/operations`. */
export const CreateOperationRequestSchema = z.strictObject({
  operationId: OperationIdSchema.optional(),
  parent: OperationNameSchema.optional(),
  metadata: AnySchema.optional(),
  requestId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "-" and "_" only')
    .optional(),
  deadline: DeadlineSchema.optional(),
  heartbeatTimeout: HeartbeatTimeoutSchema.optional(),
});
export type CreateOperationRequest = z.infer<typeof CreateOperationRequestSchema>;

/** A page size in the query: decimal digits only (no `0x10`, `1e3`, sign or spaces). */
const pageSize = z
  .string()
  .regex(/^[0-9]{1,9}$/, 'must be a non-negative decimal integer')
  .transform(Number)
  .transform((n) =>
    n === 0 ? defaults.listPageSizeDefault : Math.min(n, defaults.listPageSizeMax),
  );

/** Query of `GET /v1/operations`. */
export const ListOperationsRequestSchema = z.strictObject({
  filter: z.string().max(2048).default(''),
  pageSize: pageSize.default(defaults.listPageSizeDefault),
  pageToken: z.string().max(2048).default(''),
});
export type ListOperationsRequest = z.infer<typeof ListOperationsRequestSchema>;

/** Query of `GET /v1/operations/{id}/children`. */
export const ListChildrenRequestSchema = z.strictObject({
  pageSize: pageSize.default(defaults.listPageSizeDefault),
  pageToken: z.string().max(2048).default(''),
});
export type ListChildrenRequest = z.infer<typeof ListChildrenRequestSchema>;

export const ListOperationsResponseSchema = z.object({
  operations: z.array(OperationSchema),
  nextPageToken: z.string(),
});
export type ListOperationsResponse = z.infer<typeof ListOperationsResponseSchema>;

/** Body of `POST /v1/operations/{id}:wait`. */
export const WaitOperationRequestSchema = z.strictObject({
  timeout: DurationMs.optional(),
});

/** Body of `POST /v1/operations:batchWait`. */
export const BatchWaitRequestSchema = z.strictObject({
  names: z.array(OperationNameSchema).min(1).max(defaults.batchWaitNamesMax),
  timeout: DurationMs.optional(),
});
/** The body as sent (`timeout` a Duration string such as "30s"). */
export type BatchWaitRequest = z.input<typeof BatchWaitRequestSchema>;

/** Reply of `POST /v1/operations:batchWait`: the latest states, in the order of the names. */
export const BatchWaitResponseSchema = z.strictObject({
  operations: z.array(OperationSchema),
  truncated: z
    .array(OperationNameSchema)
    .optional()
    .describe(
      'Operations answered as {name, done} only, because their full states would pass the ' +
        "response's byte budget (LRO_RESPONSE_MAX_BYTES); GET them one by one.",
    ),
});
export type BatchWaitResponse = z.infer<typeof BatchWaitResponseSchema>;

/** A node of the operation tree that `:traverse` returns (the reference's OperationNode). */
export const OperationNodeSchema = z.strictObject({
  operation: OperationNameSchema,
  get childrenOperations(): z.ZodArray<typeof OperationNodeSchema> {
    return z.array(OperationNodeSchema);
  },
});
export type OperationNode = z.infer<typeof OperationNodeSchema>;

/** Reply of `GET /v1/operations/{id}:getParent`: `{}` for a root operation. */
export const GetParentResponseSchema = z.strictObject({ parent: OperationNameSchema.optional() });
export type GetParentResponse = z.infer<typeof GetParentResponseSchema>;

/** A failed operation's status from a code and message. */
export function status(code: Code, message: string, details?: Any[]): Status {
  return details === undefined ? { code, message } : { code, message, details };
}

/** Formats zod issues as one line for an INVALID_ARGUMENT message. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parses with a schema; INVALID_ARGUMENT naming every problem otherwise. */
export function parseOrInvalid<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidArgument(`invalid ${what}: ${describeIssues(result.error)}`);
  return result.data;
}
