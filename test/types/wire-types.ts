/**
 * One source per wire type: the client package declares the replies it reads as plain
 * TypeScript (shared/sdk/operation.ts, no zod), and those types must equal the ones derived from
 * the zod schemas that the API answers with (shared/sdk/model.ts). This file has no test to run:
 * `npm run typecheck` (part of `npm test`) compiles it and fails when two types differ.
 */
import type * as model from '../../shared/sdk/model.js';
import type * as plain from '../../shared/sdk/operation.js';

/** `true` only when A and B are the same type (not merely assignable one way). */
type Same<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const wireTypesAgree: [
  Same<plain.OperationNode, model.OperationNode>,
  Same<plain.BatchWaitResponse, model.BatchWaitResponse>,
  Same<plain.GetParentResponse, model.GetParentResponse>,
] = [true, true, true];
