/**
 * Request IDs (AIP-155): `P r/{requestId}` (family `i`, column `o` = the operation ID) binds a
 * create's request ID to the operation it creates, so that a retried create answers with the
 * same operation.
 *
 * - A request ID is bound before the operation is written and released when the create fails
 *   for good (ALREADY_EXISTS, parent gone), so it names only a successful create; a binding to
 *   an operation that is another's or expired is stale and taken over. Every step is one
 *   CheckAndMutateRow on the binding's row.
 * - A retried create and a delete never interleave into an operation that outlives the delete
 *   or that its request ID does not name. A retry that finds the binding but no operation takes
 *   it for a create in flight and writes the operation, but only if the row holds no tombstone of
 *   its request ID (one predicate, operation-rows.ts); the delete of an operation created with a
 *   request ID replaces the row by that tombstone (holding the operation as it was) and releases
 *   the binding last (parent-delete.ts). So a retry that saw the binding answers with the deleted
 *   operation, and one that did not creates a new operation and binds the request ID to it.
 *   Tombstones expire with the retention period.
 */
import { Code, LroError } from '../../../sdk/errors.js';
import { exactly, isExpired, readCells, type TableContext } from './columns.js';
import { INDEX } from './keys.js';

/** Failures after which a create certainly wrote nothing, so its request ID is free again. */
export function isDefinitive(err: unknown): boolean {
  const code = err instanceof LroError ? err.code : undefined;
  return code === Code.ALREADY_EXISTS || code === Code.NOT_FOUND || code === Code.ABORTED;
}

/**
 * The operation ID bound to a request ID: ours when we bind it first; the earlier one when its
 * operation carries this request ID or is not written yet (a create in flight, or one that
 * failed transiently and is being retried). A binding to an operation of another request, or an
 * expired one, is stale: it is replaced by ours if nobody changed it meanwhile.
 */
export async function claimRequestId(
  table: TableContext,
  requestId: string,
  id: string,
  now: number,
): Promise<{ id: string; claimed: boolean }> {
  const key = table.keys.request(requestId);
  const bind = { method: 'insert', data: { [INDEX]: { o: { value: id, timestamp: now * 1000 } } } };
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = await table.access.checkAndMutate(key, [{ family: INDEX }, { column: 'o' }], {
      onMatch: [],
      onNoMatch: [bind],
    });
    if (!taken) return { id, claimed: true };
    const [row] = await table.access.read({ keys: [key] });
    const earlier = row?.data[INDEX]?.o?.[0]?.value;
    if (earlier === undefined) continue; // released in between
    const cells = await readCells(table, earlier);
    if (!cells || (!isExpired(table, cells) && cells.Q === requestId)) {
      return { id: earlier, claimed: false };
    }
    const replaced = await table.access.checkAndMutate(
      key,
      [{ family: INDEX }, { column: 'o' }, { value: exactly(earlier) }],
      { onMatch: [{ method: 'delete', data: [`${INDEX}:o`] }, bind], onNoMatch: [] },
    );
    if (replaced) return { id, claimed: true };
  }
  throw new LroError(Code.ABORTED, `request ID ${requestId} kept changing; retry`);
}

/** Unbinds a request ID from an operation ID, if it is still bound to it. */
export async function releaseRequestId(
  table: TableContext,
  requestId: string,
  id: string,
): Promise<void> {
  await table.access.checkAndMutate(
    table.keys.request(requestId),
    [{ family: INDEX }, { column: 'o' }, { value: exactly(id) }],
    { onMatch: [{ method: 'delete' }], onNoMatch: [] },
  );
}
