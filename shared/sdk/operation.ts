/**
 * The wire types of google.longrunning as plain TypeScript, without zod: what the client package
 * declares, so that it depends on nothing. The zod schemas of model.ts are their source of truth
 * (a type test checks that each type here equals the schema's inferred type).
 */

/** google.protobuf.Any in JSON: an object with `@type` and the message's fields. */
export interface Any {
  '@type': string;
  [field: string]: unknown;
}

/** google.rpc.Status. */
export interface Status {
  code: number;
  message: string;
  details?: Any[] | undefined;
}

/** google.longrunning.Operation; `name` is `operations/{id}`. */
export interface Operation {
  name: string;
  metadata?: Any | undefined;
  done: boolean;
  error?: Status | undefined;
  response?: Any | undefined;
}

/** A node of the operation tree (traverse). */
export interface OperationNode {
  operation: string;
  childrenOperations: OperationNode[];
}

/** The reply of a batch wait; `truncated` names the states answered as `{name, done}` only. */
export interface BatchWaitResponse {
  operations: Operation[];
  truncated?: string[] | undefined;
}

/** The reply of getParent: no `parent` for a root operation. */
export interface GetParentResponse {
  parent?: string | undefined;
}
