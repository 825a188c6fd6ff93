/**
 * The lists of operations (ListOperations, AIP-160 filter) and of one operation's children, in ID
 * order or in create-time order, each page through the shared paging (paging.ts).
 *
 * - By ID: a range scan of `o/` (narrowed to a name prefix when the filter has one), the filter
 *   applied to each record; of `c/{parentId}/` for children (children.ts).
 * - By create time: the time-ordered index (time-index.ts); a name-prefix search reads that key
 *   range and sorts it, so it may cover `PREFIX_SORT_MAX` operations at most.
 * - Page tokens are bound to the filter or parent and the order: a token is refused by another
 *   request.
 */
import { defaults } from '../../../sdk/defaults.js';
import { invalidArgument, notFound } from '../../../sdk/errors.js';
import { operationIdOf } from '../../../sdk/model.js';
import type { OrderBy } from '../../../sdk/operation-times.js';
import { compileFilter, namePrefixOf, type OperationPredicate } from '../filter.js';
import type { PageTokens } from '../page-token.js';
import type { ListOptions, OperationRecord, Page, PageOptions } from '../store.js';
import { childrenPage } from './children.js';
import { cellsOf, find, type TableContext, toRecord } from './columns.js';
import { operationBytes, readPage, scan } from './paging.js';
import { orderPrefix, readTimeOrderedPage, sortedPage } from './time-index.js';

/** Operations a name-prefix search sorted by create time may cover at most. */
const PREFIX_SORT_MAX = 1000;

/** What the lists need: the table, the page tokens, and the byte budget of a page. */
export interface ListContext {
  table: TableContext;
  tokens: PageTokens;
  pageMaxBytes: number;
}

export async function listOperations(lists: ListContext, options: ListOptions): Promise<Page> {
  const { table } = lists;
  const predicate = compileFilter(options.filter);
  const within = namePrefixOf(options.filter) ?? '';
  if (options.orderBy !== undefined) {
    return listByTime(lists, options, options.orderBy, predicate, within);
  }
  const prefix = table.keys.operations();
  const page = await readPage<OperationRecord>({
    pageSize: options.pageSize,
    pageToken: options.pageToken,
    tokens: lists.tokens,
    scope: `list\n${options.filter}`,
    batchSize: Math.min(Math.max(options.pageSize * 2, 100), 1000),
    budget: { maxBytes: lists.pageMaxBytes, bytesOf: operationBytes },
    maxExamined: defaults.listScanRowsMax,
    read: async (after, limit) =>
      (await scan(table, prefix, after, limit, undefined, within)).map((row) => {
        const id = row.id.slice(prefix.length);
        const record = toRecord(table, id, cellsOf(row));
        return { position: id, entry: record && predicate(record) ? record : undefined };
      }),
  });
  return { operations: page.entries, nextPageToken: page.nextPageToken };
}

/** A list page in create-time order (see the top of this file). */
async function listByTime(
  lists: ListContext,
  options: ListOptions,
  order: OrderBy,
  predicate: OperationPredicate,
  within: string,
): Promise<Page> {
  const { table, tokens } = lists;
  const scope = `list\n${options.filter}\norderBy=${order}`;
  const after = options.pageToken ? tokens.decode(options.pageToken, scope) : undefined;
  const budget = { maxBytes: lists.pageMaxBytes, bytesOf: operationBytes };
  let page: { records: OperationRecord[]; next: string | undefined };
  if (within !== '') {
    const prefix = table.keys.operations();
    const found = await scan(table, prefix, undefined, PREFIX_SORT_MAX + 1, undefined, within);
    if (found.length > PREFIX_SORT_MAX) {
      throw invalidArgument(
        `more than ${PREFIX_SORT_MAX} operations have a name starting with operations/${within}; to sort them by create_time, use a longer prefix (or list them by name)`,
      );
    }
    const candidates = found.flatMap((row) => {
      const record = toRecord(table, row.id.slice(prefix.length), cellsOf(row));
      return record && predicate(record) ? [record] : [];
    });
    page = sortedPage(order, candidates, { after, pageSize: options.pageSize, ...budget });
  } else {
    page = await readTimeOrderedPage(table, {
      order,
      prefix: orderPrefix(table.keys.prefix, order),
      after,
      pageSize: options.pageSize,
      accept: predicate,
      ...budget,
    });
  }
  return {
    operations: page.records,
    nextPageToken: page.next === undefined ? '' : tokens.encode(page.next, scope),
  };
}

/** The immediate children of `parent`; NOT_FOUND when it does not exist. */
export async function listChildren(
  lists: ListContext,
  parent: string,
  options: PageOptions,
): Promise<Page> {
  const { table, tokens } = lists;
  const parentId = operationIdOf(parent);
  if (!(await find(table, parentId))) throw notFound(`operation ${parent} not found`);
  if (options.orderBy === undefined) {
    return childrenPage(
      table,
      tokens,
      parent,
      { pageSize: options.pageSize, pageToken: options.pageToken, maxBytes: lists.pageMaxBytes },
      operationBytes,
    );
  }
  const order = options.orderBy;
  const scope = `children\n${parent}\norderBy=${order}`;
  const after = options.pageToken ? tokens.decode(options.pageToken, scope) : undefined;
  const page = await readTimeOrderedPage(table, {
    order,
    prefix: orderPrefix(table.keys.prefix, order, parentId),
    after,
    pageSize: options.pageSize,
    accept: (record) => record.parent === parent,
    maxBytes: lists.pageMaxBytes,
    bytesOf: operationBytes,
  });
  return {
    operations: page.records,
    nextPageToken: page.next === undefined ? '' : tokens.encode(page.next, scope),
  };
}
