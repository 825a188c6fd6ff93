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
 * This file knows keys and the listing loop; the store (bigtable-store.ts) does the reads and
 * writes, so that only it talks to Bigtable.
 */
import { defaults } from '../../../sdk/defaults.js';
import { OPERATIONS_PREFIX, OperationIdSchema } from '../../../sdk/model.js';
import type { OrderBy } from '../../../sdk/operation-times.js';
import type { OperationPredicate } from '../filter.js';
import type { OperationRecord } from '../store.js';

/** Largest value of 15 digits: inverted times sort newest first. */
const MS_MAX = 999_999_999_999_999;

function padMs(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

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

/** An index row as the store reads it. */
export interface IndexRow {
  key: string;
}

/** What the listing loop needs from the store. */
export interface TimeIndexReader {
  /** Index rows of `prefix` after the position `after` (exclusive), in key order. */
  scan(prefix: string, after: string | undefined, limit: number): Promise<IndexRow[]>;
  /** The live operations of these IDs. */
  findMany(ids: string[]): Promise<Map<string, OperationRecord>>;
  /** Removes an index row whose operation is gone (best effort). */
  drop(key: string): void;
  now(): number;
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
  reader: TimeIndexReader,
  request: TimeIndexPageRequest,
): Promise<{ records: OperationRecord[]; next: string | undefined }> {
  const records: OperationRecord[] = [];
  const batchSize = Math.min(Math.max(request.pageSize * 2, 100), 1000);
  let cursor = request.after;
  let examined = 0;
  let bytes = 0;
  for (;;) {
    const rows = await reader.scan(request.prefix, cursor, batchSize);
    const positions = rows.map((row) => row.key.slice(request.prefix.length));
    const parsed = positions.map((position) => parsePosition(request.order, position));
    const found = await reader.findMany(
      parsed.flatMap((entry) => (entry === undefined ? [] : [entry.id])),
    );
    for (const [index, row] of rows.entries()) {
      const before = cursor;
      const position = positions[index] as string;
      cursor = position;
      examined++;
      const entry = parsed[index];
      if (entry === undefined) continue;
      const record = found.get(entry.id);
      if (record === undefined || record.createTime.getTime() !== entry.createMs) {
        // Gone, or an entry of an earlier operation of the same ID: removed once surely stale.
        if (reader.now() - entry.createMs > DANGLING_MS) reader.drop(row.key);
        continue;
      }
      if (!request.accept(record)) continue;
      bytes += request.bytesOf(record);
      if (records.length > 0 && bytes > request.maxBytes && before !== undefined) {
        return { records, next: before };
      }
      records.push(record);
      if (records.length === request.pageSize) {
        const more = index < rows.length - 1 || rows.length === batchSize;
        return { records, next: more ? position : undefined };
      }
    }
    if (rows.length < batchSize) return { records, next: undefined };
    if (examined >= defaults.listScanRowsMax && cursor !== undefined) {
      return { records, next: cursor };
    }
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
