/**
 * The columns of an operation row (family `s`, layout in keys.ts) by name: cells ⇄ record, and
 * the filters that name columns. On disk the qualifiers stay one letter (C, U, P, …); here each
 * has its meaning once, and the rest of the folder reads records or names cells through these.
 *
 * - State columns are one capital letter, or a capital and lowercase hex (the Z deletion marks
 *   and Y tombstones). Qualifiers sort as bytes, so they form one column range ("A" to "Z…") that
 *   ends before the event-ID cells (e{hash}), which reads never return and only predicates look
 *   at (`STATE_RANGE`, `STATE_CELLS`).
 * - Arbitrary IDs (event IDs, request IDs) become column names as 32 hex digits of SHA-256, so a
 *   column filter on them holds no regular-expression syntax.
 * - C is stored as 13 digits where predicates compare it with a time (`createTimeValue`), so that
 *   it sorts as bytes like the number it holds.
 */
import { createHash } from 'node:crypto';
import type { Liveness } from '../../../sdk/deadlines.js';
import { type Any, type Operation, operationName } from '../../../sdk/model.js';
import type { OperationRecord } from '../store.js';
import type { BigtableAccess, RawRow } from './access.js';
import { type Keys, STATE } from './keys.js';

/** What every protocol of the operations table works with. */
export interface TableContext {
  access: BigtableAccess;
  keys: Keys;
  retentionMs: number;
  now: () => number;
}

/** An operation row's state cells by qualifier (values as stored). */
export type Cells = Partial<
  Record<'C' | 'U' | 'P' | 'Q' | 'M' | 'K' | 'X' | 'D' | 'R' | 'L' | 'T' | 'H', string>
> &
  Record<string, string | undefined>;

/** The state columns (see the top of this file). */
export const STATE_COLUMNS = /^[A-Z][0-9a-f]*$/;
export const STATE_RANGE = {
  column: {
    family: STATE,
    start: { value: 'A', inclusive: true },
    end: { value: '[', inclusive: false },
  },
};
/** The filter of an operation read: the newest version of each state cell. */
export const STATE_CELLS = [{ family: STATE }, STATE_RANGE, { column: { cellLimit: 1 } }];

/** A filter yielding the state column `name`. */
export const column = (name: string) => [{ family: STATE }, { column: name }];
/** A filter matching what any of `filters` matches (Bigtable wants two or more in an interleave). */
export const anyOf = (filters: unknown[][]): unknown[] =>
  filters.length === 1 ? (filters[0] as unknown[]) : [{ interleave: filters }];
/** A value filter matching exactly `text` (operation IDs have no regular-expression syntax). */
export const exactly = (text: string) => `^${text.replace(/[^a-z0-9-]/g, '\\$&')}$`;
/** `text` as an RE2 literal (ASCII punctuation escaped; other bytes match themselves). */
export function escapeRegExp(text: string): string {
  return text.replace(/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/g, '\\$&');
}

/** 32 hex digits of SHA-256: column names for arbitrary IDs, without regular-expression syntax. */
function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
/** The column recording that the event with this ID took effect. */
export const eventColumn = (eventId: string) => `e${hashOf(eventId)}`;
/** The tombstone column of a deleted operation that was created with this request ID. */
export const tombstoneColumn = (requestId: string) => `Y${hashOf(requestId)}`;
/** A create time (ms) as C stores it and compares as bytes: 13 digits until the year 2286. */
export const createTimeValue = (ms: number) =>
  String(Math.max(0, Math.floor(ms))).padStart(13, '0');
/** The deletion marks on an operation row (columns Z{token}). */
export function deletionMarks(cells: Cells): string[] {
  return Object.keys(cells).filter((name) => name.length > 1 && name.startsWith('Z'));
}

/** The liveness fields of an operation's cells. */
export function livenessOf(cells: Cells): Liveness {
  const live: Liveness = { createMs: Number(cells.C) };
  if (cells.L !== undefined) live.deadlineMs = Number(cells.L);
  if (cells.T !== undefined) live.heartbeatTimeoutMs = Number(cells.T);
  if (cells.H !== undefined) live.lastHeartbeatMs = Number(cells.H);
  return live;
}

/** The cells of a new operation. */
export function createCells(
  now: number,
  options: {
    parent?: string;
    requestId?: string;
    metadata?: Any;
    deadline?: Date;
    heartbeatTimeoutMs?: number;
  },
): Cells {
  const cells: Cells = { C: String(now), U: String(now) };
  if (options.parent !== undefined) cells.P = options.parent;
  if (options.requestId !== undefined) cells.Q = options.requestId;
  if (options.metadata !== undefined) cells.M = JSON.stringify(options.metadata);
  if (options.deadline !== undefined) cells.L = String(options.deadline.getTime());
  if (options.heartbeatTimeoutMs !== undefined) cells.T = String(options.heartbeatTimeoutMs);
  return cells;
}

/** The mutation writing `cells` (the undefined ones skipped) with `timestamp` (µs). */
export function insert(cells: Cells, timestamp: number) {
  const data: Record<string, { value: string; timestamp: number }> = {};
  for (const [name, value] of Object.entries(cells)) {
    if (value !== undefined) data[name] = { value, timestamp };
  }
  return { method: 'insert', data: { [STATE]: data } };
}

/** The newest state cells of a row read. */
export function cellsOf(row: RawRow): Cells {
  const cells: Cells = {};
  const family = row.data[STATE] ?? {};
  for (const [name, versions] of Object.entries(family)) {
    const value = versions[0]?.value;
    if (value !== undefined) cells[name as keyof Cells] = String(value);
  }
  return cells;
}

/** Whether the operation in `cells` finished longer than the retention period ago. */
export function isExpired(table: TableContext, cells: Cells): boolean {
  return cells.D !== undefined && Number(cells.D) + table.retentionMs <= table.now();
}

/** The record in a row's cells; undefined when the row is not a live operation. */
export function toRecord(
  table: TableContext,
  id: string,
  cells: Cells,
): OperationRecord | undefined {
  if (cells.C === undefined || isExpired(table, cells)) return undefined;
  const operation: Operation = { name: operationName(id), done: cells.D !== undefined };
  if (cells.M !== undefined) operation.metadata = JSON.parse(cells.M) as Any;
  if (cells.R !== undefined) {
    const result = JSON.parse(cells.R) as Pick<Operation, 'error' | 'response'>;
    if (result.error !== undefined) operation.error = result.error;
    else if (result.response !== undefined) operation.response = result.response;
  }
  const record: OperationRecord = {
    operation,
    createTime: new Date(Number(cells.C)),
    updateTime: new Date(Number(cells.U ?? cells.C)),
  };
  if (cells.D !== undefined) record.doneTime = new Date(Number(cells.D));
  if (cells.P !== undefined) record.parent = cells.P;
  if (cells.X !== undefined) record.cancelRequestTime = new Date(Number(cells.X));
  if (cells.L !== undefined) record.deadline = new Date(Number(cells.L));
  if (cells.T !== undefined) record.heartbeatTimeoutMs = Number(cells.T);
  if (cells.H !== undefined) record.lastHeartbeatTime = new Date(Number(cells.H));
  return record;
}

/** What a tombstone keeps of a deleted operation (Y{hash}: request-ids.ts, parent-delete.ts). */
export interface Tombstone {
  operation: Operation;
  createTime: number;
  deleteTime: number;
}

export function tombstoneRecord(value: string): OperationRecord {
  const tombstone = JSON.parse(value) as Tombstone;
  return {
    operation: tombstone.operation,
    createTime: new Date(tombstone.createTime),
    updateTime: new Date(tombstone.deleteTime),
  };
}

/** The operation's cells; undefined when there is no operation (no row, or a tombstone). */
export async function readCells(
  table: TableContext,
  id: string,
  extraColumn?: string,
): Promise<Cells | undefined> {
  const cells = await readRow(table, id, extraColumn);
  return cells?.C === undefined ? undefined : cells;
}

/** The row's state cells, and `extraColumn` (an event or tombstone column) when present. */
export async function readRow(
  table: TableContext,
  id: string,
  extraColumn?: string,
): Promise<Cells | undefined> {
  const [row] = await table.access.read({
    keys: [table.keys.operation(id)],
    filter: rowFilter(extraColumn),
  });
  return row && cellsOf(row);
}

/** The filter of readRow: the newest state cells, and `extraColumn` when given. */
export function rowFilter(extraColumn?: string): unknown {
  return extraColumn === undefined
    ? STATE_CELLS
    : [
        { family: STATE },
        { interleave: [[STATE_RANGE], [{ column: extraColumn }]] },
        { column: { cellLimit: 1 } },
      ];
}

/** The live operation, if any. */
export async function find(table: TableContext, id: string): Promise<OperationRecord | undefined> {
  const cells = await readCells(table, id);
  return cells && toRecord(table, id, cells);
}

/** The live operations among `ids`, by ID (one read). */
export async function findMany(
  table: TableContext,
  ids: string[],
): Promise<Map<string, OperationRecord>> {
  const found = new Map<string, OperationRecord>();
  if (ids.length === 0) return found;
  const rows = await table.access.read({
    keys: ids.map((id) => table.keys.operation(id)),
    filter: STATE_CELLS,
  });
  const prefix = table.keys.operations();
  for (const row of rows) {
    const id = row.id.slice(prefix.length);
    const record = toRecord(table, id, cellsOf(row));
    if (record) found.set(id, record);
  }
  return found;
}
