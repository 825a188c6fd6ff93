/**
 * The operation rows (`P o/{id}`, family `s`; columns in columns.ts): every write to an
 * operation is one CheckAndMutateRow on its row, so it needs no transaction.
 *
 * - Create-if-absent: caller IDs are never overwritten (`writeIfAbsent`).
 * - Terminal write-once: of racing completions exactly one matches (`complete`, `expire`).
 * - Newest metadata wins: the write applies only when no stored K is >= the event's key, and the
 *   operation is not done. K sorts by emit time, then event ID, so duplicates of one event and
 *   late events change nothing (`updateMetadata`).
 * - Heartbeats renew H, never moving it back (`heartbeat`); cancel records X once
 *   (`requestCancel`); `expire` ends an operation past its deadline or heartbeat timeout, unless a
 *   heartbeat renewed it since its read.
 * - Event identity. The write that applies an event also writes e{hash of its eventId}, in the
 *   same CheckAndMutateRow whose predicate refuses when that cell exists: one eventId takes effect
 *   at most once whatever its payload (a later emitTime, other metadata, another type). The cells
 *   live as long as the running operation; the terminal write drops them (nothing applies to a
 *   done operation). Reads never return them (STATE_CELLS). Heartbeats are checked, not recorded
 *   (one cell per heartbeat would grow the row every 15 s, and a heartbeat changes no state).
 *   Cost: about 40 bytes per applied progress event while the operation runs. Reads and
 *   predicates first narrow the row to the state columns (a column range, which Bigtable can
 *   seek), but the emulator passes over every cell of the row each time: with 1,000 recorded IDs
 *   its reads are several times and its progress writes about 20 times slower
 *   (bench/event-ids.ts).
 * - Incarnations. An event published before its operation was created belongs to an earlier
 *   operation of the same name: every event write also refuses when C (the create time, taken
 *   before the create writes anything) is later than the event's publish time, and the terminal
 *   write refuses when C changed since its read.
 * - The terminal write rewrites the whole row with the completion time as timestamp, so that GC
 *   removes it once retention has passed (keys.ts), and dates the index entries likewise.
 */
import { deadlineExceededMessage, dueOf } from '../../../sdk/deadlines.js';
import { alreadyExists, Code, LroError, notFound } from '../../../sdk/errors.js';
import { type Any, type Operation, operationIdOf, operationName } from '../../../sdk/model.js';
import type {
  CompleteOptions,
  ExpireResult,
  HeartbeatOptions,
  HeartbeatResult,
  NotAppliedReason,
  OperationRecord,
  Outcome,
  UpdateMetadataOptions,
  WriteResult,
} from '../store.js';
import { dateChild, removeChild } from './children.js';
import {
  anyOf,
  type Cells,
  column,
  createTimeValue,
  eventColumn,
  insert,
  isExpired,
  livenessOf,
  readCells,
  readRow,
  rowFilter,
  STATE_COLUMNS,
  STATE_RANGE,
  type TableContext,
  tombstoneColumn,
  tombstoneRecord,
  toRecord,
} from './columns.js';
import { historyMutations } from './history.js';
import { padMs, RUNNING_TIMESTAMP_MICROS, STATE } from './keys.js';
import { scan } from './paging.js';
import { dateTimeIndex } from './time-index.js';

const COMPLETE_ATTEMPTS = 8;

/**
 * Writes a new operation's row unless one exists. A retry (`requestId` bound already) writes it
 * only if no delete removed the one its request created: the tombstone of the request ID blocks
 * the insert, and the retry answers with the deleted operation. ALREADY_EXISTS when taken.
 */
export async function writeIfAbsent(
  table: TableContext,
  id: string,
  cells: Cells,
  options: { parentId?: string; parent?: string; requestId?: string; retried: boolean },
): Promise<OperationRecord> {
  const { parentId, requestId } = options;
  const key = table.keys.operation(id);
  const tombstone =
    options.retried && requestId !== undefined ? tombstoneColumn(requestId) : undefined;
  const blocking = tombstone === undefined ? column('C') : anyOf([column('C'), column(tombstone)]);
  for (let attempt = 0; attempt < 3; attempt++) {
    const exists = await table.access.checkAndMutate(key, blocking, {
      onMatch: [],
      // The family goes first: a tombstone of an earlier operation of this name goes with it.
      onNoMatch: [{ method: 'delete', data: [STATE] }, insert(cells, RUNNING_TIMESTAMP_MICROS)],
    });
    if (!exists) return toRecord(table, id, cells) as OperationRecord;
    const row = await readRow(table, id);
    const deleted = tombstone === undefined ? undefined : row?.[tombstone];
    if (row?.C === undefined && deleted !== undefined) {
      // The operation this request created was deleted while the request was retried: the
      // retry answers as if it had come first, with the operation as it was when deleted.
      if (parentId !== undefined) {
        await removeChild(table, parentId, id).catch(() => undefined);
      }
      return tombstoneRecord(deleted);
    }
    const existing = row?.C === undefined ? undefined : row;
    if (!existing) continue; // deleted in between: try again
    if (isExpired(table, existing)) {
      await table.access.mutate({ key, method: 'delete' });
      continue;
    }
    if (requestId !== undefined && existing.Q === requestId) {
      return toRecord(table, id, existing) as OperationRecord;
    }
    if (parentId !== undefined && existing.P !== options.parent) {
      await removeChild(table, parentId, id);
    }
    throw alreadyExists(`operation ${operationName(id)} already exists`);
  }
  throw new LroError(Code.ABORTED, `operation ${operationName(id)} kept changing; retry`);
}

/**
 * A predicate that yields cells (so CheckAndMutateRow takes onMatch) only when the operation
 * exists and `blocking` yields nothing: condition(blocking ? block all : column C).
 */
function unchangedFilter(blocking: unknown[], eventColumnName?: string) {
  // First down to the state cells (and the one event-ID cell looked for), so that the
  // condition, which Bigtable (and far more the emulator) evaluates over every cell it is
  // given, does not pass over all the event IDs of a busy operation.
  const cells =
    eventColumnName === undefined
      ? STATE_RANGE
      : { interleave: [[STATE_RANGE], [{ column: eventColumnName }]] };
  return [cells, { condition: { test: blocking, pass: [{ all: false }], fail: column('C') } }];
}

/**
 * A predicate part yielding cells when the operation was created after `publishTime` (C sorts
 * as bytes like the number it holds while both have 13 digits); nothing without a time.
 */
function createdAfter(publishTime: Date | undefined): unknown[][] {
  if (publishTime === undefined) return [];
  const published = createTimeValue(publishTime.getTime());
  return [[...column('C'), { value: { start: { value: published, inclusive: false } } }]];
}

/**
 * Whether an event cannot apply to the operation in `cells` because of who it is: published
 * before the operation was created, or its eventId (column `seen`) took effect already.
 */
function identityConflict(
  cells: Cells,
  seen: string | undefined,
  publishTime: Date | undefined,
): NotAppliedReason | undefined {
  if (publishTime !== undefined && Number(cells.C) > publishTime.getTime()) {
    return 'earlier-operation';
  }
  if (seen !== undefined && cells[seen] !== undefined) return 'duplicate';
  return undefined;
}

/** The stored state after an event's write did not apply, and why when it is the identity. */
async function notApplied(
  table: TableContext,
  name: string,
  seen: string | undefined,
  publishTime: Date | undefined,
): Promise<WriteResult> {
  const id = operationIdOf(name);
  const cells = await readCells(table, id, seen);
  const record = cells && toRecord(table, id, cells);
  if (!cells || !record) throw notFound(`operation ${name} not found`);
  const reason = identityConflict(cells, seen, publishTime);
  return reason === undefined
    ? { operation: record.operation, applied: false }
    : { operation: record.operation, applied: false, reason };
}

/** Records a cancellation request (once); the state after. */
export async function requestCancel(table: TableContext, name: string): Promise<boolean> {
  const now = table.now();
  return table.access.checkAndMutate(
    table.keys.operation(operationIdOf(name)),
    unchangedFilter([{ interleave: [column('D'), column('X')] }]),
    {
      onMatch: [insert({ X: String(now), U: String(now) }, RUNNING_TIMESTAMP_MICROS)],
      onNoMatch: [],
    },
  );
}

export async function complete(
  table: TableContext,
  name: string,
  outcome: Outcome,
  options: CompleteOptions = {},
): Promise<WriteResult> {
  const id = operationIdOf(name);
  const seen = options.eventId === undefined ? undefined : eventColumn(options.eventId);
  for (let attempt = 0; attempt < COMPLETE_ATTEMPTS; attempt++) {
    const current = await readCells(table, id, seen);
    if (!current || isExpired(table, current)) throw notFound(`operation ${name} not found`);
    const operation = () => (toRecord(table, id, current) as OperationRecord).operation;
    const reason = identityConflict(current, seen, options.publishTime);
    if (reason !== undefined) return { operation: operation(), applied: false, reason };
    if (current.D !== undefined) return { operation: operation(), applied: false };
    const conflicts = seen === undefined ? [] : [column(seen)];
    const written = await writeTerminal(table, id, current, outcome, options, conflicts, seen);
    if (written) return { operation: written, applied: true };
  }
  throw new LroError(Code.ABORTED, `operation ${name} kept changing; retry`);
}

/**
 * The terminal write over the cells read: the operation when it applied, undefined when the
 * row changed since (`extraConflicts` adds more such changes).
 */
async function writeTerminal(
  table: TableContext,
  id: string,
  current: Cells,
  outcome: Outcome,
  options: CompleteOptions,
  extraConflicts: unknown[][] = [],
  seen?: string,
): Promise<Operation | undefined> {
  const now = table.now();
  const next: Cells = { ...current, U: String(now), D: String(now) };
  // The event-ID cells go: nothing applies to a done operation any more.
  for (const name of Object.keys(next)) if (!STATE_COLUMNS.test(name)) delete next[name];
  next.R = JSON.stringify(
    'error' in outcome ? { error: outcome.error } : { response: outcome.response },
  );
  if (options.metadata !== undefined) next.M = JSON.stringify(options.metadata);
  // Conflicts: it became done, or (when we keep the stored metadata) newer metadata arrived,
  // or a cancellation was recorded, or it was deleted and created again (another C) since our
  // read. Any of them: read again and retry.
  const created = current.C ?? '';
  const conflicts: unknown[][] = [
    column('D'),
    [...column('C'), { value: { start: { value: created, inclusive: false } } }],
    [...column('C'), { value: { end: { value: created, inclusive: false } } }],
    ...extraConflicts,
  ];
  if (options.metadata === undefined) {
    conflicts.push(
      current.K === undefined
        ? column('K')
        : [...column('K'), { value: { start: { value: current.K, inclusive: false } } }],
    );
  }
  if (current.X === undefined) conflicts.push(column('X'));
  const applied = await table.access.checkAndMutate(
    table.keys.operation(id),
    unchangedFilter(anyOf(conflicts), seen),
    {
      onMatch: [
        { method: 'delete', data: [STATE] },
        insert(next, now * 1000),
        ...historyMutations(options.history),
      ],
      onNoMatch: [],
    },
  );
  if (!applied) return undefined;
  if (current.P !== undefined) await dateChild(table, current.P, id, current.C, now);
  await dateTimeIndex(table, id, current, now);
  return (toRecord(table, id, next) as OperationRecord).operation;
}

export async function updateMetadata(
  table: TableContext,
  name: string,
  metadata: Any,
  options: UpdateMetadataOptions,
): Promise<WriteResult> {
  const id = operationIdOf(name);
  const key = `${padMs(options.emitTime.getTime())}/${options.eventId}`;
  const seen = eventColumn(options.eventId);
  const now = table.now();
  const newer = [...column('K'), { value: { start: { value: key, inclusive: true } } }];
  const blocking = [column('D'), newer, column(seen), ...createdAfter(options.publishTime)];
  const applied = await table.access.checkAndMutate(
    table.keys.operation(id),
    unchangedFilter([{ interleave: blocking }], seen),
    {
      onMatch: [
        insert(
          { M: JSON.stringify(metadata), K: key, U: String(now), H: padMs(now), [seen]: '1' },
          RUNNING_TIMESTAMP_MICROS,
        ),
        ...historyMutations(options.history),
      ],
      onNoMatch: [],
    },
  );
  // Applied: the operation is running and this metadata is its newest, so its state is known
  // without reading the row back.
  if (applied) return { operation: { name, done: false, metadata }, applied: true };
  return notApplied(table, name, seen, options.publishTime);
}

export async function heartbeat(
  table: TableContext,
  name: string,
  options: HeartbeatOptions,
): Promise<HeartbeatResult> {
  const id = operationIdOf(name);
  const value = padMs(options.time.getTime());
  // One CheckAndMutateRow writing one cell; never applied to a done operation, never moving
  // the heartbeat back (a later one applied first), never for an event ID that took effect or
  // an event older than the operation. Its own ID is not recorded (see the top of this file).
  const newer = [...column('H'), { value: { start: { value, inclusive: true } } }];
  const seen = options.eventId === undefined ? undefined : eventColumn(options.eventId);
  const blocking = [
    column('D'),
    newer,
    ...(seen === undefined ? [] : [column(seen)]),
    ...createdAfter(options.publishTime),
  ];
  const applied = await table.access.checkAndMutate(
    table.keys.operation(id),
    unchangedFilter([{ interleave: blocking }], seen),
    {
      onMatch: [
        insert({ H: value }, RUNNING_TIMESTAMP_MICROS),
        ...historyMutations(options.history),
      ],
      onNoMatch: [],
    },
  );
  if (applied) return { applied: true };
  const { operation, reason } = await notApplied(table, name, seen, options.publishTime);
  return reason === undefined
    ? { applied: false, operation }
    : { applied: false, operation, reason };
}

export async function expire(table: TableContext, name: string, now: Date): Promise<ExpireResult> {
  const id = operationIdOf(name);
  let reads = 0;
  for (let attempt = 0; attempt < COMPLETE_ATTEMPTS; attempt++) {
    const current = await readCells(table, id);
    reads++;
    if (!current || isExpired(table, current)) return { state: 'missing', reads };
    if (current.D !== undefined) {
      const operation = (toRecord(table, id, current) as OperationRecord).operation;
      return { state: 'done', operation, reads };
    }
    const live = livenessOf(current);
    const due = dueOf(live);
    if (due === undefined) return { state: 'running', reads };
    if (due.dueMs > now.getTime()) return { state: 'running', due: new Date(due.dueMs), reads };
    const error = {
      code: Code.DEADLINE_EXCEEDED,
      message: deadlineExceededMessage(live, due.limit),
    };
    // A heartbeat since our read renews the operation: then it is not ended.
    const renewed =
      current.H === undefined
        ? column('H')
        : [...column('H'), { value: { start: { value: current.H, inclusive: false } } }];
    const written = await writeTerminal(table, id, current, { error }, {}, [renewed]);
    if (written) return { state: 'ended', operation: written, limit: due.limit, reads };
  }
  throw new LroError(Code.ABORTED, `operation ${name} kept changing; retry`);
}

/**
 * The first calls of an event's read and conditional write, made on `key`, a row no operation
 * uses, and writing nothing (an instance's warm-up, shared/service/runtime/warm-up.ts). The
 * requests have the shapes of an event's (a chain of filters with an interleave, value ranges
 * and a condition; a family delete and a cell insert), because the client libraries build the
 * encoder of each message type on its first use: about 10 ms of CPU that a first event would pay
 * otherwise. The predicate needs the operation's creation cell, which `key` never has, so the
 * write takes the empty onNoMatch. One read is a list's first row (one operation, if any
 * exists), so that decoding an answer with cells is not a first caller's either.
 */
export async function warmUp(table: TableContext, key: string, timeoutMs: number): Promise<void> {
  const options = { timeoutMs };
  const seen = eventColumn('warm-up');
  const newer = [...column('K'), { value: { start: { value: '~', inclusive: true } } }];
  // At once: the calls share the client's start, then go out together.
  await Promise.all([
    table.access.read({ keys: [key], filter: rowFilter(seen) }, options),
    // A list's read of its first row (it has the call's own timeout; the warm-up's bound still
    // holds, warm-up.ts stops waiting at it).
    scan(table, table.keys.operations(), undefined, 1),
    table.access.checkAndMutate(
      key,
      unchangedFilter([{ interleave: [column('D'), newer, column(seen)] }], seen),
      {
        onMatch: [
          { method: 'delete', data: [STATE] },
          insert({ U: '0' }, RUNNING_TIMESTAMP_MICROS),
        ],
        onNoMatch: [],
      },
      options,
    ),
  ]);
}
