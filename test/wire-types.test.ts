/**
 * One source per wire type: the client package declares the replies it reads as plain
 * TypeScript (shared/sdk/operation.ts, no zod), and those types must equal the ones derived from
 * the zod schemas that the API answers with (shared/sdk/model.ts). Checked when the tests are
 * type-checked (`npm run typecheck`), as the packages' test does for Operation and Status.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type * as model from '../shared/sdk/model.js';
import type * as plain from '../shared/sdk/operation.js';

describe("the client package's plain reply types", () => {
  it('equal the types derived from the schemas of the API', () => {
    expectTypeOf<plain.OperationNode>().toEqualTypeOf<model.OperationNode>();
    expectTypeOf<plain.BatchWaitResponse>().toEqualTypeOf<model.BatchWaitResponse>();
    expectTypeOf<plain.GetParentResponse>().toEqualTypeOf<model.GetParentResponse>();
  });
});
