/**
 * The event history's cells: family `h` of the operation's own row (the format, its bounds and
 * why: ../event-history.ts). An applied event's entry is one more mutation of the conditional
 * write that applies it (`historyMutations`, operation-rows.ts); an event that changed nothing
 * costs one conditional write of its own (`recordHistory`).
 */
import { notFound } from '../../../sdk/errors.js';
import { operationIdOf } from '../../../sdk/model.js';
import {
  HISTORY_EVENTS_COLUMN,
  HISTORY_FAMILY,
  HISTORY_HEARTBEATS_COLUMN,
  HISTORY_VERSIONS,
  type HistoryCell,
  type HistoryEntry,
  type HistoryRecord,
  heartbeatCellValue,
  historyFromCells,
} from '../event-history.js';
import { column, escapeRegExp, isExpired, type TableContext } from './columns.js';
import { STATE } from './keys.js';

/** The mutation adding a history entry to the operation's row (none without an entry). */
export function historyMutations(entry: HistoryEntry | undefined) {
  if (entry === undefined) return [];
  const heartbeat = entry.outcome === 'HEARTBEAT';
  const cell = {
    value: heartbeat ? heartbeatCellValue(entry) : JSON.stringify(entry),
    timestamp: Date.parse(entry.applyTime) * 1000,
  };
  const columnName = heartbeat ? HISTORY_HEARTBEATS_COLUMN : HISTORY_EVENTS_COLUMN;
  return [{ method: 'insert', data: { [HISTORY_FAMILY]: { [columnName]: cell } } }];
}

/** Adds an entry to an existing operation's history (DUPLICATE when `duplicateIfSeen` finds its eventId). */
export async function recordHistory(
  table: TableContext,
  name: string,
  entry: HistoryEntry,
  options: { duplicateIfSeen?: boolean } = {},
): Promise<void> {
  const key = table.keys.operation(operationIdOf(name));
  if (options.duplicateIfSeen) {
    // One conditional write: DUPLICATE when an entry of this eventId is stored, else as given.
    // (The operation was read a moment ago; a delete racing this could leave a row of history
    // alone, which its max-age GC removes.)
    // Entries are JSON objects whose first field is the eventId; a value filter is a full match.
    const seen = `^\\{"eventId":${escapeRegExp(JSON.stringify(entry.eventId))},.*$`;
    await table.access.checkAndMutate(
      key,
      [{ family: HISTORY_FAMILY }, { column: HISTORY_EVENTS_COLUMN }, { value: seen }],
      {
        onMatch: historyMutations({ ...entry, outcome: 'DUPLICATE' }),
        onNoMatch: historyMutations(entry),
      },
    );
    return;
  }
  // Only onto an existing operation: never a row holding nothing but history.
  await table.access.checkAndMutate(key, column('C'), {
    onMatch: historyMutations(entry),
    onNoMatch: [],
  });
}

/** The operation's history, newest first, heartbeat runs collapsed. NOT_FOUND when absent. */
export async function readHistory(table: TableContext, name: string): Promise<HistoryRecord> {
  const id = operationIdOf(name);
  const [row] = await table.access.read({
    keys: [table.keys.operation(id)],
    filter: [
      {
        interleave: [
          [{ family: STATE }, { column: /^[CD]$/ }, { column: { cellLimit: 1 } }],
          [{ family: HISTORY_FAMILY }, { column: { cellLimit: HISTORY_VERSIONS } }],
        ],
      },
    ],
  });
  const created = row?.data[STATE]?.C?.[0]?.value;
  const done = row?.data[STATE]?.D?.[0]?.value;
  const expired = done !== undefined && isExpired(table, { D: String(done) });
  if (row === undefined || created === undefined || expired) {
    // An expired operation is gone, its history with it.
    throw notFound(`operation ${name} not found`);
  }
  const cells: HistoryCell[] = [];
  for (const [columnName, versions] of Object.entries(row.data[HISTORY_FAMILY] ?? {})) {
    for (const version of versions) {
      cells.push({
        column: columnName,
        value: String(version.value),
        timeMs: Math.floor(Number(version.timestamp) / 1000),
      });
    }
  }
  return historyFromCells(name, cells);
}
