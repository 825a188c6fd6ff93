/**
 * The due index: `P d/{due ms, 15 digits}/{id}` (family `i`, column `d`) for every operation with
 * a deadline or a heartbeat timeout, by the earliest time it may be due. The sweeper
 * (../../sweeper/sweeper.ts) reads the entries due by now in one range read, however many
 * operations run, and checks each lazily (`expire` in operation-rows.ts): an operation renewed by
 * heartbeats is moved later, not ended.
 *
 * - An entry is written before its operation row: an entry without its operation is removed by
 *   the sweeper, an operation without its entry would never be swept.
 * - A move writes the new entry first: a crash in between leaves two entries, and the earlier one
 *   is found due, checked and moved onto the later one.
 * - Entries carry the far-future timestamp of running operations; the sweeper removes each once
 *   its operation is done or gone.
 */
import { OperationIdSchema, operationIdOf, operationName } from '../../../sdk/model.js';
import type { DueEntry } from '../store.js';
import type { TableContext } from './columns.js';
import { INDEX, padMs, RUNNING_TIMESTAMP_MICROS } from './keys.js';

/** Writes the entry of an operation due at `dueMs`. */
export async function addDue(table: TableContext, dueMs: number, id: string): Promise<void> {
  await table.access.mutate({
    key: table.keys.due(dueMs, id),
    method: 'insert',
    data: { [INDEX]: { d: { value: String(dueMs), timestamp: RUNNING_TIMESTAMP_MICROS } } },
  });
}

/** Entries due at or before `now`, earliest first (at most `limit`). */
export async function listDue(table: TableContext, now: Date, limit: number): Promise<DueEntry[]> {
  const prefix = table.keys.dues();
  const rows = await table.access.read({
    ranges: [
      {
        start: { value: prefix, inclusive: true },
        end: { value: `${prefix}${padMs(now.getTime() + 1)}`, inclusive: false },
      },
    ],
    limit,
    filter: [{ family: INDEX }, { column: { cellLimit: 1 } }],
  });
  const entries: DueEntry[] = [];
  for (const row of rows) {
    const rest = row.id.slice(prefix.length);
    const slash = rest.indexOf('/');
    const id = rest.slice(slash + 1);
    if (slash !== 15 || !OperationIdSchema.safeParse(id).success) continue;
    entries.push({
      key: row.id,
      operation: operationName(id),
      due: new Date(Number(rest.slice(0, 15))),
    });
  }
  return entries;
}

/** Moves an entry to `due`, or removes it when `due` is undefined. */
export async function reschedule(
  table: TableContext,
  entry: DueEntry,
  due: Date | undefined,
): Promise<void> {
  const id = operationIdOf(entry.operation);
  if (due !== undefined) {
    if (table.keys.due(due.getTime(), id) === entry.key) return;
    await addDue(table, due.getTime(), id);
  }
  await table.access.mutate({ key: entry.key, method: 'delete' });
}
