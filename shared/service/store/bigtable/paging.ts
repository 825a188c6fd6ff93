/**
 * Shared paging (AIP-158) over a key range: the page size, the byte budget and the cursor, the
 * same for the list of operations, the children of one, and dead letters.
 *
 * - The cursor is the last row position a page covered (relative to the range's prefix), in a
 *   signed page token bound to the request (../page-token.ts). The next page reads from just after
 *   it, so a page never repeats nor skips an entry, whatever is written between pages.
 * - Rows are read in batches; entries that are not shown (filtered out, dangling, past
 *   retention) still move the cursor. A page ends at `pageSize` entries, and says there are more
 *   only when the batch held more rows or was full.
 * - The byte budget: a page ends before the entry that would take its JSON past `maxBytes`
 *   (the response limit less room for the envelope), so a page of large operations is answered
 *   in several pages rather than refused; a page always holds at least one entry.
 * - A scan limit (`maxExamined`): a filter that matches little ends the page early, with a token,
 *   instead of reading the whole range in one request.
 */

import type { PageTokens } from '../page-token.js';
import type { OperationRecord } from '../store.js';
import type { RawRow } from './access.js';
import { STATE_CELLS, type TableContext } from './columns.js';
import { prefixEnd, STATE } from './keys.js';

/** Room kept in a page's byte budget for `{"operations":[…],"nextPageToken":"…"}`. */
export const PAGE_ENVELOPE_BYTES = 4096;

/** The JSON bytes an operation adds to a page (its text and a comma). */
export function operationBytes(record: OperationRecord): number {
  return Buffer.byteLength(JSON.stringify(record.operation)) + 1;
}

/**
 * Rows of `prefix` (narrowed to `prefix + within`), after the position `after`: the state cells
 * of operation rows, or the newest cell of index rows (`family`).
 */
export async function scan(
  table: Pick<TableContext, 'access'>,
  prefix: string,
  after: string | undefined,
  limit: number,
  family = STATE,
  within = '',
): Promise<RawRow[]> {
  const first = prefix + within;
  return table.access.read({
    ranges: [
      {
        start:
          after === undefined || prefix + after < first
            ? { value: first, inclusive: true }
            : { value: prefix + after, inclusive: false },
        end: { value: prefixEnd(first), inclusive: false },
      },
    ],
    limit,
    filter: family === STATE ? STATE_CELLS : [{ family }, { column: { cellLimit: 1 } }],
  });
}

/** One batch of a range: each row's position, and its entry when it is to be shown. */
export type Batch<T> = { position: string; entry: T | undefined }[];

/** A page of a range from a position: what to read and where the page ends. */
export interface RangePageRequest<T> {
  /** The position after which the page starts (from the page token). */
  after: string | undefined;
  pageSize: number;
  /** Rows read at once. */
  batchSize: number;
  /** Up to `limit` rows after the position `after`, in key order. */
  read(after: string | undefined, limit: number): Promise<Batch<T>>;
  /** The byte budget of the page, and each entry's size. */
  budget?: { maxBytes: number; bytesOf(entry: T): number };
  /** Rows read at most for one page (a page with a token ends there). */
  maxExamined?: number;
}

/** One page of a range, and the position to resume after (undefined when there is no more). */
export async function pageOf<T>(
  request: RangePageRequest<T>,
): Promise<{ entries: T[]; next: string | undefined }> {
  const { batchSize, budget } = request;
  const entries: T[] = [];
  let cursor = request.after;
  let examined = 0;
  let bytes = 0;
  for (;;) {
    const batch = await request.read(cursor, batchSize);
    for (const [index, { position, entry }] of batch.entries()) {
      const before = cursor;
      cursor = position;
      examined++;
      if (entry === undefined) continue;
      if (budget) {
        // The byte budget: the page ends before the entry that would pass it.
        bytes += budget.bytesOf(entry);
        if (entries.length > 0 && bytes > budget.maxBytes && before !== undefined) {
          return { entries, next: before };
        }
      }
      entries.push(entry);
      if (entries.length === request.pageSize) {
        const more = index < batch.length - 1 || batch.length === batchSize;
        return { entries, next: more ? position : undefined };
      }
    }
    if (batch.length < batchSize) return { entries, next: undefined };
    if (
      request.maxExamined !== undefined &&
      examined >= request.maxExamined &&
      cursor !== undefined
    ) {
      return { entries, next: cursor };
    }
  }
}

/** A page of a range behind a page token. */
export interface PageRequest<T> extends Omit<RangePageRequest<T>, 'after'> {
  pageToken: string;
  tokens: PageTokens;
  /** What the token is bound to (the filter, the parent, …). */
  scope: string;
}

/** One page of a range, and the token of the next (empty when there is none). */
export async function readPage<T>(
  request: PageRequest<T>,
): Promise<{ entries: T[]; nextPageToken: string }> {
  const { tokens, pageToken, scope, ...range } = request;
  const after = pageToken ? tokens.decode(pageToken, scope) : undefined;
  const page = await pageOf({ ...range, after });
  return {
    entries: page.entries,
    nextPageToken: page.next === undefined ? '' : tokens.encode(page.next, scope),
  };
}
