/**
 * The parent-delete protocol: deleting an operation is refused while it has children (AIP-135),
 * race-free without transactions, and a delete leaves what a retried create needs.
 *
 * - A child's create writes its index entry (children.ts), then checks the parent row for a
 *   deletion mark (`checkParentOpen`); a delete writes a mark (`Z{token}`), then scans the
 *   children index. Whichever comes second sees the other's write, so a child is never created
 *   under a parent that a delete removed. An index entry whose child is not written yet belongs
 *   to a create in flight: the delete waits a moment for it to be written or given up.
 * - The row goes only if our mark is still there (nobody deleted and recreated it meanwhile),
 *   with its index entries (children, time order) in one MutateRows call.
 * - An operation created with a request ID leaves a tombstone (`Y{hash}`, the operation as it
 *   was) in its row, and the binding of the request ID is released last, so that a retry of the
 *   create that still finds the binding answers with the deleted operation instead of writing it
 *   again (request-ids.ts).
 */
import { randomBytes } from 'node:crypto';
import { Code, failedPrecondition, LroError, notFound } from '../../../sdk/errors.js';
import { operationIdOf, operationName } from '../../../sdk/model.js';
import type { OperationRecord } from '../store.js';
import { DANGLING_INDEX_MS, entryCreateMs } from './children.js';
import {
  column,
  deletionMarks,
  findMany,
  insert,
  isExpired,
  readCells,
  type TableContext,
  type Tombstone,
  tombstoneColumn,
  toRecord,
} from './columns.js';
import { INDEX, STATE } from './keys.js';
import { scan } from './paging.js';
import { releaseRequestId } from './request-ids.js';
import { timeKeys } from './time-index.js';

/** How long a delete waits for children whose create is in flight to be written or given up. */
const IN_FLIGHT_CREATE_WAIT_MS = 3_000;

/**
 * After the child's index entry is written: the parent must still exist and no delete of it may
 * be in progress. Otherwise the entry is removed and the create fails.
 */
export async function checkParentOpen(
  table: TableContext,
  parentId: string,
  id: string,
): Promise<void> {
  const parent = await readCells(table, parentId);
  const deleting = parent !== undefined && deletionMarks(parent).length > 0;
  if (parent && !isExpired(table, parent) && !deleting) return;
  await table.access
    .mutate({ key: table.keys.child(parentId, id), method: 'delete' })
    .catch(() => undefined);
  if (deleting) {
    throw new LroError(
      Code.ABORTED,
      `parent operation ${operationName(parentId)} is being deleted; retry if it still exists`,
    );
  }
  throw notFound(`parent operation ${operationName(parentId)} not found`);
}

/** Removes the operation and its index entries (see the top of this file). */
export async function deleteOperation(table: TableContext, name: string): Promise<void> {
  const id = operationIdOf(name);
  const key = table.keys.operation(id);
  const cells = await readCells(table, id);
  if (!cells || isExpired(table, cells)) throw notFound(`operation ${name} not found`);
  // Mark the deletion first, then look for children.
  const mark = `Z${randomBytes(8).toString('hex')}`;
  const marked = await table.access.checkAndMutate(key, column('C'), {
    onMatch: [{ method: 'insert', data: { [STATE]: { [mark]: { value: '1' } } } }],
    onNoMatch: [],
  });
  if (!marked) throw notFound(`operation ${name} not found`);
  const keys: string[] = [];
  if (cells.P) keys.push(table.keys.child(operationIdOf(cells.P), id));
  keys.push(...timeKeys(table, id, cells));
  try {
    const { live, entries } = await childEntries(table, id);
    if (live > 0) {
      throw failedPrecondition(
        `operation ${name} has ${live} child operation${live === 1 ? '' : 's'}; delete ${live === 1 ? 'it' : 'them'} first`,
      );
    }
    keys.push(...entries);
  } catch (err) {
    await table.access
      .mutate({ key, method: 'delete', data: [`${STATE}:${mark}`] })
      .catch(() => undefined);
    throw err;
  }
  const now = table.now();
  const record = toRecord(table, id, cells) as OperationRecord;
  const tombstone: Tombstone = {
    operation: record.operation,
    createTime: record.createTime.getTime(),
    deleteTime: now,
  };
  await table.access.checkAndMutate(key, column(mark), {
    onMatch:
      cells.Q === undefined
        ? [{ method: 'delete' }]
        : [
            { method: 'delete', data: [STATE] },
            insert({ [tombstoneColumn(cells.Q)]: JSON.stringify(tombstone) }, now * 1000),
          ],
    onNoMatch: [],
  });
  if (keys.length > 0) {
    await table.access.mutate(keys.map((key) => ({ key, method: 'delete' })));
  }
  if (cells.Q !== undefined) await releaseRequestId(table, cells.Q, id);
}

/**
 * The children index of an operation: how many entries are live children (existing and naming
 * it), and every entry's row key. An entry whose operation is not written yet belongs to a
 * create in flight: it either writes the child (live) or, having seen the deletion mark, removes
 * its entry; that is awaited for a moment. An old such entry is a create that crashed.
 */
async function childEntries(
  table: TableContext,
  id: string,
): Promise<{ live: number; entries: string[] }> {
  const prefix = table.keys.children(id);
  const entries: string[] = [];
  const pending: string[] = [];
  let live = 0;
  let cursor: string | undefined;
  for (;;) {
    const rows = await scan(table, prefix, cursor, 1000, INDEX);
    const ids = rows.map((row) => row.id.slice(prefix.length));
    const found = await findMany(table, ids);
    for (const [index, row] of rows.entries()) {
      entries.push(row.id);
      const childId = ids[index] as string;
      const record = found.get(childId);
      if (record) {
        if (record.parent === operationName(id)) live++;
        continue;
      }
      if (table.now() - entryCreateMs(row) < DANGLING_INDEX_MS) pending.push(childId);
    }
    if (rows.length < 1000) break;
    cursor = ids[ids.length - 1];
  }
  const deadline = Date.now() + IN_FLIGHT_CREATE_WAIT_MS;
  let delay = 10;
  while (pending.length > 0) {
    const ids = [...pending];
    pending.length = 0;
    const [found, entryRows] = await Promise.all([
      findMany(table, ids),
      table.access.read({ keys: ids.map((childId) => table.keys.child(id, childId)) }),
    ]);
    const stillIndexed = new Set(entryRows.map((row) => row.id));
    for (const childId of ids) {
      const record = found.get(childId);
      if (record) {
        if (record.parent === operationName(id)) live++;
      } else if (stillIndexed.has(table.keys.child(id, childId))) {
        pending.push(childId);
      }
    }
    if (pending.length > 0 && Date.now() > deadline) {
      live += pending.length;
      break;
    }
    if (pending.length > 0) await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
  return { live, entries };
}
