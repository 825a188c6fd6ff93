/**
 * The time-ordered index behind AIP-132 `orderBy=create_time desc|asc` of ListOperations and
 * children: lists in creation order without scanning the table.
 *
 * Rows (P = the row-key prefix; family `i`, column `t` = the create time in ms):
 *
 *   P ta/{create ms, 15 digits}/{id}                 every operation, oldest first
 *   P td/{inverted create ms, 15 digits}/{id}        every operation, newest first
 *   P ka/{parentId}/{create ms}/{id}                 children of a parent, oldest first
 *   P kd/{parentId}/{inverted create ms}/{id}        children of a parent, newest first
 *
 * Why this shape:
 * - Bigtable reads rows in key order only (the Node client has no reverse scan), so each order
 *   has its own rows; a page is one range read from the page token's position. Operations created
 *   in the same millisecond sort by ID, so the position (time and ID) is exact and a page never
 *   repeats nor skips one, whatever is created or deleted between pages.
 * - The entries are written in one MutateRows call before the operation row, like the children
 *   index: a crash in between leaves entries without an operation, which listing skips and
 *   removes after a minute; the other order could leave an operation missing from the lists.
 * - They carry a far-future timestamp while the operation runs and the completion time once it
 *   ends (one MutateRows call after the terminal write), so the family's max-age GC removes them
 *   with the operation. Deleting an operation removes them in the same call as its row.
 * - An entry is trusted only when its operation's create time equals the entry's: an operation
 *   re-created under the ID of an expired one is listed once, at its own time.
 *
 * The page loop is the shared one (paging.ts); reads and writes go through access.ts.
 */
import { defaults } from '../../../sdk/defaults.js';
import { log } from '../../../sdk/log.js';
import {
  OPERATIONS_PREFIX,
  OperationIdSchema,
  operationIdOf,
  operationName,
} from '../../../sdk/model.js';
import type { OrderBy } from '../../../sdk/operation-times.js';
import type { OperationPredicate } from '../filter.js';
import type { OperationRecord } from '../store.js';
import { type Cells, findMany, type TableContext } from './columns.js';
import { INDEX, padMs, RUNNING_TIMESTAMP_MICROS } from './keys.js';
import { pageOf, scan } from './paging.js';

/** Largest value of 15 digits: inverted times sort newest first. */
const MS_MAX = 999_999_999_999_999;

/** The position of an operation in an order (relative to the order's key prefix). */
export function positionOf(order: OrderBy, createMs: number, id: string): string {
  return `${padMs(order === 'create_time desc' ? MS_MAX - createMs : createMs)}/${id}`;
}

/** The key prefix of an order: over all operations, or over one parent's children. */
export function orderPrefix(rowKeyPrefix: string, order: OrderBy, parentId?: string): string {
  const direction = order === 'create_time desc' ? 'd' : 'a';
  return parentId === undefined
    ? `${rowKeyPrefix}t${direction}/`
    : `${rowKeyPrefix}k${direction}/${parentId}/`;
}

const ORDERS: readonly OrderBy[] = ['create_time asc', 'create_time desc'];

/** Every index row key of an operation (both orders, and its parent's when it has one). */
export function timeIndexKeys(
  rowKeyPrefix: string,
  id: string,
  createMs: number,
  parentId?: string,
): string[] {
  const keys = ORDERS.map(
    (order) => orderPrefix(rowKeyPrefix, order) + positionOf(order, createMs, id),
  );
  if (parentId !== undefined) {
    for (const order of ORDERS) {
      keys.push(orderPrefix(rowKeyPrefix, order, parentId) + positionOf(order, createMs, id));
    }
  }
  return keys;
}

/** The create time and ID in a position; undefined when it is not one. */
export function parsePosition(
  order: OrderBy,
  position: string,
): { createMs: number; id: string } | undefined {
  const slash = position.indexOf('/');
  const id = position.slice(slash + 1);
  if (slash !== 15 || !/^\d{15}$/.test(position.slice(0, 15))) return undefined;
  if (!OperationIdSchema.safeParse(id).success) return undefined;
  const value = Number(position.slice(0, 15));
  return { createMs: order === 'create_time desc' ? MS_MAX - value : value, id };
}

export interface TimeIndexPageRequest {
  order: OrderBy;
  prefix: string;
  /** Position after which the page starts (from the page token). */
  after: string | undefined;
  pageSize: number;
  /** The record must pass this to be listed (filter, or being the parent's child). */
  accept: OperationPredicate;
  /** The page ends before the operation that would pass this many JSON bytes. */
  maxBytes: number;
  bytesOf(record: OperationRecord): number;
}

/** Index entries without their operation are removed after this long (a create that crashed). */
const DANGLING_MS = 60_000;

/**
 * One page in index order: the records and the position to resume after (undefined when the
 * index has no more). Reads at most `defaults.listScanRowsMax` entries for one page.
 */
export async function readTimeOrderedPage(
  table: TableContext,
  request: TimeIndexPageRequest,
): Promise<{ records: OperationRecord[]; next: string | undefined }> {
  const page = await pageOf<OperationRecord>({
    after: request.after,
    pageSize: request.pageSize,
    batchSize: Math.min(Math.max(request.pageSize * 2, 100), 1000),
    budget: { maxBytes: request.maxBytes, bytesOf: request.bytesOf },
    maxExamined: defaults.listScanRowsMax,
    read: async (after, limit) => {
      const rows = await scan(table, request.prefix, after, limit, INDEX);
      const positions = rows.map((row) => row.id.slice(request.prefix.length));
      const parsed = positions.map((position) => parsePosition(request.order, position));
      const found = await findMany(
        table,
        parsed.flatMap((entry) => (entry === undefined ? [] : [entry.id])),
      );
      return rows.map((row, index) => {
        const position = positions[index] as string;
        const entry = parsed[index];
        if (entry === undefined) return { position, entry: undefined };
        const record = found.get(entry.id);
        if (record === undefined || record.createTime.getTime() !== entry.createMs) {
          // Gone, or an entry of an earlier operation of the same ID: removed once surely stale.
          if (table.now() - entry.createMs > DANGLING_MS) {
            table.access.mutate({ key: row.id, method: 'delete' }).catch(() => undefined);
          }
          return { position, entry: undefined };
        }
        return { position, entry: request.accept(record) ? record : undefined };
      });
    },
  });
  return { records: page.entries, next: page.next };
}

/** Writes the time-ordered index entries of an operation, with the cells' timestamp. */
export async function writeTimeIndex(
  table: TableContext,
  id: string,
  createMs: number,
  parentId: string | undefined,
  timestampMicros: number,
): Promise<void> {
  await table.access.mutate(
    timeIndexKeys(table.keys.prefix, id, createMs, parentId).map((key) => ({
      key,
      method: 'insert',
      data: { [INDEX]: { t: { value: String(createMs), timestamp: timestampMicros } } },
    })),
  );
}

/** The time-index row keys of the operation in `cells`. */
export function timeKeys(table: TableContext, id: string, cells: Cells): string[] {
  const parentId = cells.P === undefined ? undefined : operationIdOf(cells.P);
  return cells.C === undefined
    ? []
    : timeIndexKeys(table.keys.prefix, id, Number(cells.C), parentId);
}

/**
 * After the terminal write: the time-index entries take the completion time as timestamp (so
 * that they expire with the operation) and lose their running-time version.
 */
export async function dateTimeIndex(
  table: TableContext,
  id: string,
  cells: Cells,
  now: number,
): Promise<void> {
  const keys = timeKeys(table, id, cells);
  try {
    await table.access.mutate(
      keys.flatMap((key) => [
        {
          key,
          method: 'insert',
          data: { [INDEX]: { t: { value: cells.C as string, timestamp: now * 1000 } } },
        },
        {
          key,
          method: 'delete',
          data: [
            {
              column: `${INDEX}:t`,
              time: {
                start: new Date(now + 1),
                end: new Date(RUNNING_TIMESTAMP_MICROS / 1000 + 1),
              },
            },
          ],
        },
      ]),
    );
  } catch (err) {
    log.warn('could not date the time-index entries; they stay until the operation is deleted', {
      operation: operationName(id),
      error: err,
    });
  }
}

/**
 * Orders records already read (a name-prefix range) by create time, then ID, and returns the
 * page after `after`: for prefix searches sorted by time, where the range is small.
 */
export function sortedPage(
  order: OrderBy,
  candidates: OperationRecord[],
  request: Pick<TimeIndexPageRequest, 'after' | 'pageSize' | 'maxBytes' | 'bytesOf'>,
): { records: OperationRecord[]; next: string | undefined } {
  const keyed = candidates
    .map((record) => ({
      record,
      position: positionOf(
        order,
        record.createTime.getTime(),
        record.operation.name.slice(OPERATIONS_PREFIX.length),
      ),
    }))
    .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
    .filter((entry) => request.after === undefined || entry.position > request.after);
  const records: OperationRecord[] = [];
  let bytes = 0;
  let last: string | undefined;
  for (const entry of keyed) {
    bytes += request.bytesOf(entry.record);
    if (records.length > 0 && bytes > request.maxBytes) return { records, next: last };
    records.push(entry.record);
    last = entry.position;
    if (records.length === request.pageSize) {
      return { records, next: keyed.length > records.length ? last : undefined };
    }
  }
  return { records, next: undefined };
}
