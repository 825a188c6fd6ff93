/**
 * The children index: `P c/{parentId}/{id}` (family `i`, column `c` = the child's create time),
 * one row per child, so that a parent's children are listed by a prefix scan of `c/{parentId}/`,
 * never a table scan. IDs cannot contain "/", so one parent's prefix never covers another's.
 *
 * - A child's entry is written before its operation row: a crash after it leaves an entry that
 *   listing skips and removes (after `DANGLING_INDEX_MS`, the create being possibly in flight),
 *   while the other order could leave a child missing from its parent's listing.
 * - The entry carries the far-future timestamp of running operations, and the child's completion
 *   time once it is done (`dateEntry`, after the terminal write), so that it expires with it.
 * - The entry is trusted only when its operation exists and names this parent (an ID re-used
 *   under another parent after a delete).
 * - Deleting a parent while it has children is refused: parent-delete.ts.
 */
import { Code, LroError } from '../../../sdk/errors.js';
import { log } from '../../../sdk/log.js';
import { type OperationNode, operationIdOf, operationName } from '../../../sdk/model.js';
import type { PageTokens } from '../page-token.js';
import type { OperationRecord } from '../store.js';
import type { RawRow } from './access.js';
import { findMany, type TableContext } from './columns.js';
import { INDEX, RUNNING_TIMESTAMP_MICROS } from './keys.js';
import { readPage, scan } from './paging.js';

/** Index rows whose operation is missing are removed after this long (a create that crashed). */
export const DANGLING_INDEX_MS = 60_000;

/** Writes the child's entry (before the child's row). */
export async function addChild(
  table: TableContext,
  parentId: string,
  id: string,
  now: number,
): Promise<void> {
  await table.access.mutate({
    key: table.keys.child(parentId, id),
    method: 'insert',
    data: { [INDEX]: { c: { value: String(now), timestamp: RUNNING_TIMESTAMP_MICROS } } },
  });
}

/** Removes the child's entry (its create failed). */
export async function removeChild(table: TableContext, parentId: string, id: string) {
  await table.access.mutate({ key: table.keys.child(parentId, id), method: 'delete' });
}

/** The child's entry takes the completion time as timestamp, so it expires with it. */
export async function dateChild(
  table: TableContext,
  parent: string,
  id: string,
  created: string | undefined,
  now: number,
): Promise<void> {
  const key = table.keys.child(operationIdOf(parent), id);
  try {
    await table.access.mutate({
      key,
      method: 'insert',
      data: { [INDEX]: { c: { value: created ?? String(now), timestamp: now * 1000 } } },
    });
    // Remove the running-time cell (its timestamp is far in the future).
    await table.access.mutate({
      key,
      method: 'delete',
      data: [
        {
          column: `${INDEX}:c`,
          time: { start: new Date(now + 1), end: new Date(RUNNING_TIMESTAMP_MICROS / 1000 + 1) },
        },
      ],
    });
  } catch (err) {
    log.warn('could not date the children index entry; it will stay until the parent is deleted', {
      operation: operationName(id),
      error: err,
    });
  }
}

/** The create time an entry holds (0 when unreadable). */
export function entryCreateMs(row: RawRow): number {
  return Number(row.data[INDEX]?.c?.[0]?.value ?? 0);
}

/** Removes an entry whose operation is gone or is another's (a young missing one may be in flight). */
function dropDangling(table: TableContext, row: RawRow, missing: boolean): void {
  if (missing && table.now() - entryCreateMs(row) < DANGLING_INDEX_MS) return;
  table.access.mutate({ key: row.id, method: 'delete' }).catch(() => undefined);
}

/** A page of the children of `parent` (its ID `parentId`) in ID order. */
export async function childrenPage(
  table: TableContext,
  tokens: PageTokens,
  parent: string,
  options: { pageSize: number; pageToken: string; maxBytes: number },
  bytesOf: (record: OperationRecord) => number,
): Promise<{ operations: OperationRecord[]; nextPageToken: string }> {
  const prefix = table.keys.children(operationIdOf(parent));
  const page = await readPage<OperationRecord>({
    pageSize: options.pageSize,
    pageToken: options.pageToken,
    tokens,
    scope: `children\n${parent}`,
    batchSize: Math.min(options.pageSize + 1, 1000),
    budget: { maxBytes: options.maxBytes, bytesOf },
    read: async (after, limit) => {
      const entries = await scan(table, prefix, after, limit, INDEX);
      const ids = entries.map((row) => row.id.slice(prefix.length));
      const found = await findMany(table, ids);
      return ids.map((id, index) => {
        const record = found.get(id);
        if (!record || record.parent !== parent) {
          dropDangling(table, entries[index] as RawRow, record === undefined);
          return { position: id, entry: undefined };
        }
        return { position: id, entry: record };
      });
    },
  });
  return { operations: page.entries, nextPageToken: page.nextPageToken };
}

/** The tree below an operation, to `maxDepth` levels, at most `defaults.traverseNodesMax` nodes. */
export async function traverse(
  name: string,
  maxDepth: number,
  maxNodes: number,
  listChildren: (
    parent: string,
    pageToken: string,
  ) => Promise<{
    operations: OperationRecord[];
    nextPageToken: string;
  }>,
): Promise<OperationNode> {
  const root: OperationNode = { operation: name, childrenOperations: [] };
  let level = [root];
  let nodes = 1;
  for (let depth = 0; depth < maxDepth && level.length > 0; depth++) {
    const next: OperationNode[] = [];
    for (const node of level) {
      let pageToken = '';
      do {
        const page = await listChildren(node.operation, pageToken);
        for (const child of page.operations) {
          const childNode = { operation: child.operation.name, childrenOperations: [] };
          node.childrenOperations.push(childNode);
          next.push(childNode);
          if (++nodes > maxNodes) {
            throw new LroError(
              Code.OUT_OF_RANGE,
              `the tree below ${name} has more than ${maxNodes} operations; use a smaller maxDepth`,
            );
          }
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
    }
    level = next;
  }
  return root;
}
