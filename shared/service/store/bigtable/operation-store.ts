/**
 * The operation store on Bigtable. The only module that imports @google-cloud/bigtable.
 *
 * Row layout (P = the configured row-key prefix, so that several services can share a table):
 *
 *   P o/{id}              one row per operation, family `s`, one cell per column:
 *                           C create time (ms)        U update time (ms)
 *                           P parent name             Q request ID of the create
 *                           M metadata (Any JSON)     K metadata order key: "{emit ms, 15 digits}/{eventId}"
 *                           X cancel request time     D done time (present iff done)
 *                           R result: {"response":…} or {"error":…}
 *                           L deadline (ms)           T heartbeat timeout (ms)
 *                           H last heartbeat or progress: "{ms, 15 digits}"
 *                           Z{token} a deletion in progress (see delete)
 *                           e{hash} the event with this ID took effect (see event identity below)
 *                           Y{hash} after a delete: the operation that request ID created is
 *                                   gone (a tombstone; the row has no C; see request IDs below)
 *   P c/{parentId}/{id}   children index, family `i`, column `c` = the child's create time
 *   P r/{requestId}       request-ID index, family `i`, column `o` = the operation ID
 *   P d/{due ms, 15 digits}/{id}
 *                         due-time index of operations with a deadline or heartbeat timeout,
 *                         family `i`, column `d`; checked lazily by the sweeper (sweeper.ts)
 *   P ta/…, td/…, ka/…, kd/…
 *                         time-ordered index for orderBy=create_time (time-index.ts)
 *   P o/{id}, family `h`  the operation's event history (event-history.ts)
 *
 * Why this shape:
 * - Every conditional write is one CheckAndMutateRow on one row: create-if-absent (caller IDs are
 *   never overwritten), terminal write-once (of racing completions exactly one matches), and
 *   newest-metadata-wins (the write applies only when no stored K is >= the event's key, and the
 *   operation is not done). K sorts by emit time, then event ID, so duplicates of one event and
 *   late events change nothing.
 * - Event identity. The write that applies an event also writes e{hash of its eventId}, in the
 *   same CheckAndMutateRow whose predicate refuses when that cell exists: one eventId takes effect
 *   at most once whatever its payload (a later emitTime, other metadata, another type). The cells
 *   live as long as the running operation; the terminal write drops them (nothing applies to a done
 *   operation). Reads never return them (STATE_CELLS). Heartbeats are checked, not recorded (one
 *   cell per heartbeat would grow the row every 15 s, and a heartbeat changes no state). Cost:
 *   about 40 bytes per applied progress event while the operation runs. Reads and predicates
 *   first narrow the row to the state columns (a column range, which Bigtable can seek), but the
 *   emulator passes over every cell of the row each time: with 1,000 recorded IDs its reads are
 *   several times and its progress writes about 20 times slower (bench/event-ids.ts).
 * - Incarnations. An event published before its operation was created belongs to an earlier
 *   operation of the same name: every event write also refuses when C (the create time, taken
 *   before the create writes anything) is later than the event's publish time, and the terminal
 *   write refuses when C changed since its read.
 * - Children are listed by a prefix scan of `c/{parentId}/`, never a table scan; IDs cannot
 *   contain "/", so one parent's prefix never covers another's.
 * - Deleting a parent is refused while it has children (AIP-135). Race-free without
 *   transactions: a child's create writes its index entry, then checks the parent row for a
 *   deletion mark; a delete writes the mark, then scans the index. Whichever comes second sees the
 *   other's write, so a child is never created under a parent that a delete removed.
 * - A request ID is bound (`r/{requestId}`) before the operation is written and released when the
 *   create fails for good (ALREADY_EXISTS, parent gone), so it names only a successful create; a
 *   binding to an operation that is another's or expired is stale and taken over.
 * - A retried create and a delete never interleave into an operation that outlives the delete or
 *   that its request ID does not name. A retry that finds the binding but no operation takes it
 *   for a create in flight and writes the operation, but only if the row holds no tombstone of
 *   its request ID (one predicate); the delete of an operation created with a request ID replaces
 *   the row by that tombstone (holding the operation as it was) and releases the binding last. So
 *   a retry that saw the binding answers with the deleted operation, and one that did not creates
 *   a new operation and binds the request ID to it. Tombstones expire with the retention period.
 * - Retention: both families have the GC rule max-age = retention. Cells of running operations
 *   carry a far-future timestamp, so GC never touches them; the terminal write rewrites the whole
 *   row with the completion time as timestamp, so GC removes finished operations once retention
 *   has passed. GC is lazy, so reads also hide operations whose D + retention is past.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Bigtable, type Table } from '@google-cloud/bigtable';
import { deadlineExceededMessage, dueOf, type Liveness } from '../../../sdk/deadlines.js';
import { defaults } from '../../../sdk/defaults.js';
import {
  alreadyExists,
  Code,
  failedPrecondition,
  invalidArgument,
  LroError,
  notFound,
} from '../../../sdk/errors.js';
import { log } from '../../../sdk/log.js';
import { skipMetadataServerProbe } from '../../../sdk/messaging.js';
import {
  type Any,
  AnySchema,
  newOperationId,
  type Operation,
  OperationIdSchema,
  type OperationNode,
  operationIdOf,
  operationName,
} from '../../../sdk/model.js';
import type { OrderBy } from '../../../sdk/operation-times.js';
import type { Config } from '../../runtime/config.js';
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
import { compileFilter, namePrefixOf } from '../filter.js';
import { PageTokens } from '../page-token.js';
import type {
  CompleteOptions,
  CreateOperationOptions,
  DueEntry,
  ExpireResult,
  HeartbeatOptions,
  HeartbeatResult,
  ListOptions,
  NotAppliedReason,
  OperationRecord,
  OperationStore,
  Outcome,
  Page,
  PageOptions,
  UpdateMetadataOptions,
  WriteResult,
} from '../store.js';
import {
  orderPrefix,
  readTimeOrderedPage,
  sortedPage,
  type TimeIndexReader,
  timeIndexKeys,
} from './time-index.js';

const STATE = 's';
const INDEX = 'i';
/** Timestamp (µs) of the cells of running operations: 2200-01-01, out of GC's reach. */
export const RUNNING_TIMESTAMP_MICROS = Date.UTC(2200, 0, 1) * 1000;
/** Index rows whose operation is missing are removed after this long (a create that crashed). */
const DANGLING_INDEX_MS = 60_000;
const COMPLETE_ATTEMPTS = 8;
/** How long a delete waits for children whose create is in flight to be written or given up. */
const IN_FLIGHT_CREATE_WAIT_MS = 3_000;

type Cells = Partial<
  Record<'C' | 'U' | 'P' | 'Q' | 'M' | 'K' | 'X' | 'D' | 'R' | 'L' | 'T' | 'H', string>
> &
  Record<string, string | undefined>;

/**
 * The cells a read returns: the state columns (one capital letter, or a capital and lowercase
 * hex: Z and Y marks), never the event-ID cells (e…), which only predicates look at. Qualifiers
 * sort as bytes, so the state columns are one range ("A" to "Z…") that ends before them.
 */
const STATE_COLUMNS = /^[A-Z][0-9a-f]*$/;
const STATE_RANGE = {
  column: {
    family: STATE,
    start: { value: 'A', inclusive: true },
    end: { value: '[', inclusive: false },
  },
};
const STATE_CELLS = [{ family: STATE }, STATE_RANGE, { column: { cellLimit: 1 } }];

/** 32 hex digits of SHA-256: column names for arbitrary IDs, without regular-expression syntax. */
function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
/** The column recording that the event with this ID took effect. */
const eventColumn = (eventId: string) => `e${hashOf(eventId)}`;
/** The tombstone column of a deleted operation that was created with this request ID. */
const tombstoneColumn = (requestId: string) => `Y${hashOf(requestId)}`;
/** A create time (ms) as C stores it and compares as bytes: 13 digits until the year 2286. */
const createTimeValue = (ms: number) => String(Math.max(0, Math.floor(ms))).padStart(13, '0');

interface RawRow {
  id: string;
  data: Record<string, Record<string, { value: string }[]>>;
}

/** A Bigtable client and the operations table through it. */
export interface TableConnection {
  bigtable: Bigtable;
  table: Table;
}

/** Bigtable's client and table for a config (emulator-aware). */
export function openTable(config: Pick<Config, 'projectId' | 'bigtable'>): TableConnection {
  if (config.bigtable.emulatorHost) skipMetadataServerProbe();
  const bigtable = new Bigtable({
    projectId: config.projectId,
    metricsEnabled: false,
    ...(config.bigtable.emulatorHost ? { apiEndpoint: config.bigtable.emulatorHost } : {}),
    ...(config.bigtable.appProfile ? { appProfileId: config.bigtable.appProfile } : {}),
  });
  const table = bigtable.instance(config.bigtable.instance).table(config.bigtable.table);
  return { bigtable, table };
}

/** Creates the table and its column families with GC rules if missing (local stack, tests). */
export async function ensureTable(config: Pick<Config, 'projectId' | 'bigtable' | 'retentionMs'>) {
  const { bigtable, table } = openTable(config);
  try {
    const [exists] = await table.exists();
    const age = { seconds: Math.ceil(config.retentionMs / 1000) };
    const rule = { age, versions: 1, union: true };
    const historyRule = { age, versions: HISTORY_VERSIONS, union: true };
    if (exists) {
      // A table made before the event history: add its family.
      const [families] = await table.getFamilies();
      if (!families.some((family) => family.id === HISTORY_FAMILY)) {
        try {
          await table.createFamily(HISTORY_FAMILY, { rule: historyRule });
        } catch (err) {
          if (grpcCode(err) !== Code.ALREADY_EXISTS) throw err;
        }
      }
      return;
    }
    try {
      await table.create({
        families: [
          { name: STATE, rule },
          { name: INDEX, rule },
          { name: HISTORY_FAMILY, rule: historyRule },
        ],
      });
    } catch (err) {
      if (grpcCode(err) !== Code.ALREADY_EXISTS) throw err;
    }
  } finally {
    await bigtable.close();
  }
}

/** Deletes the table (tests clean up what they made). */
export async function deleteTable(config: Pick<Config, 'projectId' | 'bigtable'>) {
  const { bigtable, table } = openTable(config);
  try {
    await table.delete();
  } catch (err) {
    if (grpcCode(err) !== Code.NOT_FOUND) throw err;
  } finally {
    await bigtable.close();
  }
}

/** The max-age GC rule of each column family, in seconds (for checks of the deployed table). */
export async function familyGcRules(
  config: Pick<Config, 'projectId' | 'bigtable'>,
): Promise<Record<string, { maxAgeSeconds: number | undefined }>> {
  const { bigtable, table } = openTable(config);
  try {
    const [families] = await table.getFamilies();
    const out: Record<string, { maxAgeSeconds: number | undefined }> = {};
    for (const family of families) {
      out[family.id] = { maxAgeSeconds: maxAgeOf(family.metadata?.gcRule) };
    }
    return out;
  } finally {
    await bigtable.close();
  }
}

function maxAgeOf(rule: unknown): number | undefined {
  if (!rule || typeof rule !== 'object') return undefined;
  const r = rule as {
    maxAge?: { seconds?: number | string | { toString(): string } };
    union?: { rules?: unknown[] };
    intersection?: { rules?: unknown[] };
  };
  if (r.maxAge?.seconds !== undefined) return Number(r.maxAge.seconds.toString());
  for (const inner of [...(r.union?.rules ?? []), ...(r.intersection?.rules ?? [])]) {
    const age = maxAgeOf(inner);
    if (age !== undefined) return age;
  }
  return undefined;
}

export function createStore(config: Config): BigtableOperationStore {
  return new BigtableOperationStore(config);
}

function grpcCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? ((err as { code: unknown }).code as number)
    : undefined;
}

/** Bigtable failures as LroErrors: transient ones UNAVAILABLE (callers retry), others INTERNAL. */
export function storageError(err: unknown): LroError {
  if (err instanceof LroError) return err;
  const code = grpcCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (
    code === Code.INVALID_ARGUMENT ||
    code === Code.NOT_FOUND ||
    code === Code.PERMISSION_DENIED
  ) {
    return new LroError(Code.INTERNAL, `Bigtable: ${message}`, { cause: err });
  }
  return new LroError(Code.UNAVAILABLE, `Bigtable unavailable: ${message}`, { cause: err });
}

function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function metadataKey(emitTime: Date, eventId: string): string {
  return `${padMs(emitTime.getTime())}/${eventId}`;
}

/** Milliseconds as 15 digits, so that values and row keys sort by time. */
function padMs(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

/** The liveness fields of an operation's cells. */
function livenessOf(cells: Cells): Liveness {
  const live: Liveness = { createMs: Number(cells.C) };
  if (cells.L !== undefined) live.deadlineMs = Number(cells.L);
  if (cells.T !== undefined) live.heartbeatTimeoutMs = Number(cells.T);
  if (cells.H !== undefined) live.lastHeartbeatMs = Number(cells.H);
  return live;
}

/** What a tombstone keeps of a deleted operation (see delete). */
interface Tombstone {
  operation: Operation;
  createTime: number;
  deleteTime: number;
}

function tombstoneRecord(value: string): OperationRecord {
  const tombstone = JSON.parse(value) as Tombstone;
  return {
    operation: tombstone.operation,
    createTime: new Date(tombstone.createTime),
    updateTime: new Date(tombstone.deleteTime),
  };
}

/** Room kept in a page's byte budget for `{"operations":[…],"nextPageToken":"…"}`. */
const PAGE_ENVELOPE_BYTES = 4096;

/** The JSON bytes an operation adds to a page (its text and a comma). */
function operationBytes(record: OperationRecord): number {
  return Buffer.byteLength(JSON.stringify(record.operation)) + 1;
}

/** A value filter matching exactly `text` (operation IDs have no regular-expression syntax). */
const exactly = (text: string) => `^${text.replace(/[^a-z0-9-]/g, '\\$&')}$`;

/** The deletion marks on an operation row (columns Z{token}). */
function deletionMarks(cells: Cells): string[] {
  return Object.keys(cells).filter((name) => name.length > 1 && name.startsWith('Z'));
}

/** Failures after which a create certainly wrote nothing, so its request ID is free again. */
function isDefinitive(err: unknown): boolean {
  const code = err instanceof LroError ? err.code : undefined;
  return code === Code.ALREADY_EXISTS || code === Code.NOT_FOUND || code === Code.ABORTED;
}

/** Operations a name-prefix search sorted by create time may cover at most. */
const PREFIX_SORT_MAX = 1000;

/** A row read with its history cells (timestamps in µs). */
interface HistoryRow {
  data: Record<string, Record<string, { value: string; timestamp: string | number }[]>>;
}

/** `text` as an RE2 literal (ASCII punctuation escaped; other bytes match themselves). */
function escapeRegExp(text: string): string {
  return text.replace(/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/g, '\\$&');
}

/** The mutation adding a history entry to the operation's row (none without an entry). */
function historyMutations(entry: HistoryEntry | undefined) {
  if (entry === undefined) return [];
  const heartbeat = entry.outcome === 'HEARTBEAT';
  const cell = {
    value: heartbeat ? heartbeatCellValue(entry) : JSON.stringify(entry),
    timestamp: Date.parse(entry.applyTime) * 1000,
  };
  const columnName = heartbeat ? HISTORY_HEARTBEATS_COLUMN : HISTORY_EVENTS_COLUMN;
  return [{ method: 'insert', data: { [HISTORY_FAMILY]: { [columnName]: cell } } }];
}

/**
 * The per-call deadline of every Bigtable call (`defaults.bigtableCallTimeoutMs`), so that a
 * stalled Bigtable fails the call (and the delivery or request) instead of holding it. Fresh
 * options each time: the client mutates them (it appends its metrics interceptor). Every call of
 * the stores passes them (test/bigtable-call-timeout.test.ts checks each call site).
 */
export const gax = () => ({ timeout: defaults.bigtableCallTimeoutMs });
/** A filter matching what any of `filters` matches (Bigtable wants two or more in an interleave). */
const anyOf = (filters: unknown[][]): unknown[] =>
  filters.length === 1 ? (filters[0] as unknown[]) : [{ interleave: filters }];
const column = (name: string) => [{ family: STATE }, { column: name }];

export class BigtableOperationStore implements OperationStore {
  private readonly bigtable: Bigtable;
  private readonly table: Table;
  private readonly prefix: string;
  private readonly retentionMs: number;
  private readonly tokens: PageTokens;
  private readonly pageMaxBytes: number;

  constructor(
    config: Config,
    private readonly now: () => number = Date.now,
  ) {
    ({ bigtable: this.bigtable, table: this.table } = openTable(config));
    this.prefix = config.bigtable.rowKeyPrefix;
    this.retentionMs = config.retentionMs;
    this.tokens = new PageTokens(config.pageTokenKey);
    this.pageMaxBytes = config.responseMaxBytes - PAGE_ENVELOPE_BYTES;
  }

  /** This store's client and table, for other stores of the same table to share (one client). */
  get connection(): TableConnection {
    return { bigtable: this.bigtable, table: this.table };
  }

  private opKey(id: string) {
    return `${this.prefix}o/${id}`;
  }
  private childKey(parentId: string, id: string) {
    return `${this.prefix}c/${parentId}/${id}`;
  }
  private requestKey(requestId: string) {
    return `${this.prefix}r/${requestId}`;
  }
  private dueKey(dueMs: number, id: string) {
    return `${this.prefix}d/${padMs(dueMs)}/${id}`;
  }

  async create(options: CreateOperationOptions = {}): Promise<OperationRecord> {
    if (options.id !== undefined && !OperationIdSchema.safeParse(options.id).success) {
      throw invalidArgument(`invalid operation ID ${JSON.stringify(options.id)}`);
    }
    if (options.metadata !== undefined) AnySchema.parse(options.metadata);
    let parentId: string | undefined;
    if (options.parent !== undefined) {
      parentId = operationIdOf(options.parent);
      if (!(await this.find(parentId))) {
        throw notFound(`parent operation ${options.parent} not found`);
      }
    }
    let id = options.id ?? newOperationId();
    const now = this.now();
    let claimed = false;
    if (options.requestId !== undefined) {
      ({ id, claimed } = await this.claimRequestId(options.requestId, id, now));
    }
    try {
      return await this.insertOperation(id, now, parentId, options, !claimed);
    } catch (err) {
      // The request did not succeed: its ID must not stay bound to this operation ID (AIP-155).
      if (claimed && options.requestId !== undefined && isDefinitive(err)) {
        await this.releaseRequestId(options.requestId, id).catch(() => undefined);
      }
      throw err;
    }
  }

  private async insertOperation(
    id: string,
    now: number,
    parentId: string | undefined,
    options: CreateOperationOptions,
    retried = false,
  ): Promise<OperationRecord> {
    const cells: Cells = { C: String(now), U: String(now) };
    if (options.parent !== undefined) cells.P = options.parent;
    if (options.requestId !== undefined) cells.Q = options.requestId;
    if (options.metadata !== undefined) cells.M = JSON.stringify(options.metadata);
    if (options.deadline !== undefined) cells.L = String(options.deadline.getTime());
    if (options.heartbeatTimeoutMs !== undefined) cells.T = String(options.heartbeatTimeoutMs);
    const due = dueOf(livenessOf(cells));
    if (due !== undefined) {
      // Before the operation row, like the children index: an entry without its operation is
      // removed by the sweeper, an operation without its entry would never be swept.
      await this.call(() =>
        this.table.mutate(
          {
            key: this.dueKey(due.dueMs, id),
            method: 'insert',
            data: {
              [INDEX]: { d: { value: String(due.dueMs), timestamp: RUNNING_TIMESTAMP_MICROS } },
            },
          },
          { gaxOptions: gax() },
        ),
      );
    }

    await this.writeTimeIndex(id, now, parentId, RUNNING_TIMESTAMP_MICROS);

    // The index entry comes first: a crash after it leaves an entry that listing skips and
    // removes, while the other order could leave a child missing from its parent's listing.
    if (parentId !== undefined) {
      await this.call(() =>
        this.table.mutate(
          {
            key: this.childKey(parentId, id),
            method: 'insert',
            data: { [INDEX]: { c: { value: String(now), timestamp: RUNNING_TIMESTAMP_MICROS } } },
          },
          { gaxOptions: gax() },
        ),
      );
      await this.checkParentOpen(parentId, id);
    }
    // A retry (the request ID was bound already) writes the operation only if no delete removed
    // the one its request created: the tombstone of the request ID blocks the insert.
    const tombstone =
      retried && options.requestId !== undefined ? tombstoneColumn(options.requestId) : undefined;
    const blocking =
      tombstone === undefined ? column('C') : anyOf([column('C'), column(tombstone)]);
    for (let attempt = 0; attempt < 3; attempt++) {
      const [exists] = await this.call(() =>
        this.table.row(this.opKey(id)).filter(blocking, {
          onMatch: [],
          // The family goes first: a tombstone of an earlier operation of this name goes with it.
          onNoMatch: [
            { method: 'delete', data: [STATE] },
            this.insert(cells, RUNNING_TIMESTAMP_MICROS),
          ],
          gaxOptions: gax(),
        }),
      );
      if (!exists) return this.toRecord(id, cells) as OperationRecord;
      const row = await this.readRow(id);
      const deleted = tombstone === undefined ? undefined : row?.[tombstone];
      if (row?.C === undefined && deleted !== undefined) {
        // The operation this request created was deleted while the request was retried: the
        // retry answers as if it had come first, with the operation as it was when deleted.
        if (parentId !== undefined) {
          await this.call(() =>
            this.table.mutate(
              { key: this.childKey(parentId, id), method: 'delete' },
              { gaxOptions: gax() },
            ),
          ).catch(() => undefined);
        }
        return tombstoneRecord(deleted);
      }
      const existing = row?.C === undefined ? undefined : row;
      if (!existing) continue; // deleted in between: try again
      if (this.isExpired(existing)) {
        await this.call(() =>
          this.table.mutate({ key: this.opKey(id), method: 'delete' }, { gaxOptions: gax() }),
        );
        continue;
      }
      if (options.requestId !== undefined && existing.Q === options.requestId) {
        return this.toRecord(id, existing) as OperationRecord;
      }
      if (parentId !== undefined && existing.P !== options.parent) {
        await this.call(() =>
          this.table.mutate(
            { key: this.childKey(parentId, id), method: 'delete' },
            { gaxOptions: gax() },
          ),
        );
      }
      throw alreadyExists(`operation ${operationName(id)} already exists`);
    }
    throw new LroError(Code.ABORTED, `operation ${operationName(id)} kept changing; retry`);
  }

  /**
   * After the child's index entry is written: the parent must still exist and no delete of it may
   * be in progress. Otherwise the entry is removed and the create fails.
   */
  private async checkParentOpen(parentId: string, id: string): Promise<void> {
    const parent = await this.readCells(parentId);
    const deleting = parent !== undefined && deletionMarks(parent).length > 0;
    if (parent && !this.isExpired(parent) && !deleting) return;
    await this.call(() =>
      this.table.mutate(
        { key: this.childKey(parentId, id), method: 'delete' },
        { gaxOptions: gax() },
      ),
    ).catch(() => undefined);
    if (deleting) {
      throw new LroError(
        Code.ABORTED,
        `parent operation ${operationName(parentId)} is being deleted; retry if it still exists`,
      );
    }
    throw notFound(`parent operation ${operationName(parentId)} not found`);
  }

  /**
   * The operation ID bound to a request ID: ours when we bind it first; the earlier one when its
   * operation carries this request ID or is not written yet (a create in flight, or one that
   * failed transiently and is being retried). A binding to an operation of another request, or an
   * expired one, is stale: it is replaced by ours if nobody changed it meanwhile.
   */
  private async claimRequestId(
    requestId: string,
    id: string,
    now: number,
  ): Promise<{ id: string; claimed: boolean }> {
    const row = this.table.row(this.requestKey(requestId));
    for (let attempt = 0; attempt < 5; attempt++) {
      const [taken] = await this.call(() =>
        row.filter([{ family: INDEX }, { column: 'o' }], {
          onMatch: [],
          onNoMatch: [
            {
              method: 'insert',
              data: { [INDEX]: { o: { value: id, timestamp: now * 1000 } } },
            },
          ],
          gaxOptions: gax(),
        }),
      );
      if (!taken) return { id, claimed: true };
      const [rows] = await this.call(() =>
        this.table.getRows({ keys: [this.requestKey(requestId)], gaxOptions: gax() }),
      );
      const earlier = (rows[0] as unknown as RawRow | undefined)?.data[INDEX]?.o?.[0]?.value;
      if (earlier === undefined) continue; // released in between
      const cells = await this.readCells(earlier);
      if (!cells || (!this.isExpired(cells) && cells.Q === requestId)) {
        return { id: earlier, claimed: false };
      }
      const [replaced] = await this.call(() =>
        row.filter([{ family: INDEX }, { column: 'o' }, { value: exactly(earlier) }], {
          onMatch: [
            { method: 'delete', data: [`${INDEX}:o`] },
            { method: 'insert', data: { [INDEX]: { o: { value: id, timestamp: now * 1000 } } } },
          ],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
      );
      if (replaced) return { id, claimed: true };
    }
    throw new LroError(Code.ABORTED, `request ID ${requestId} kept changing; retry`);
  }

  /** Unbinds a request ID from an operation ID, if it is still bound to it. */
  private async releaseRequestId(requestId: string, id: string): Promise<void> {
    await this.call(() =>
      this.table
        .row(this.requestKey(requestId))
        .filter([{ family: INDEX }, { column: 'o' }, { value: exactly(id) }], {
          onMatch: [{ method: 'delete' }],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
  }

  async get(name: string): Promise<OperationRecord> {
    const record = await this.find(operationIdOf(name));
    if (!record) throw notFound(`operation ${name} not found`);
    return record;
  }

  async getParent(name: string): Promise<string | undefined> {
    return (await this.get(name)).parent;
  }

  async list(options: ListOptions): Promise<Page> {
    const predicate = compileFilter(options.filter);
    const within = namePrefixOf(options.filter) ?? '';
    if (options.orderBy !== undefined) {
      return this.listByTime(options, options.orderBy, predicate, within);
    }
    const scope = `list\n${options.filter}`;
    const position = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
    const prefix = `${this.prefix}o/`;
    const operations: OperationRecord[] = [];
    let cursor = position;
    let examined = 0;
    let bytes = 0;
    const batchSize = Math.min(Math.max(options.pageSize * 2, 100), 1000);
    for (;;) {
      const rows = await this.scan(prefix, cursor, batchSize, STATE, within);
      for (const [index, row] of rows.entries()) {
        const id = row.id.slice(prefix.length);
        const before = cursor;
        cursor = id;
        examined++;
        const record = this.toRecord(id, this.cellsOf(row));
        if (!record || !predicate(record)) continue;
        // The byte budget: the page ends before the operation that would pass it.
        bytes += operationBytes(record);
        if (operations.length > 0 && bytes > this.pageMaxBytes && before !== undefined) {
          return { operations, nextPageToken: this.tokens.encode(before, scope) };
        }
        operations.push(record);
        if (operations.length === options.pageSize) {
          const more = index < rows.length - 1 || rows.length === batchSize;
          return { operations, nextPageToken: more ? this.tokens.encode(id, scope) : '' };
        }
      }
      if (rows.length < batchSize) return { operations, nextPageToken: '' };
      if (examined >= defaults.listScanRowsMax && cursor !== undefined) {
        return { operations, nextPageToken: this.tokens.encode(cursor, scope) };
      }
    }
  }

  /**
   * A list page in create-time order: from the time-ordered index, or, for a name prefix, from
   * that key range sorted (it may hold `PREFIX_SORT_MAX` operations at most).
   */
  private async listByTime(
    options: ListOptions,
    order: OrderBy,
    predicate: (record: OperationRecord) => boolean,
    within: string,
  ): Promise<Page> {
    const scope = `list\n${options.filter}\norderBy=${order}`;
    const after = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
    const budget = { maxBytes: this.pageMaxBytes, bytesOf: operationBytes };
    let page: { records: OperationRecord[]; next: string | undefined };
    if (within !== '') {
      const prefix = `${this.prefix}o/`;
      const rows = await this.scan(prefix, undefined, PREFIX_SORT_MAX + 1, STATE, within);
      if (rows.length > PREFIX_SORT_MAX) {
        throw invalidArgument(
          `more than ${PREFIX_SORT_MAX} operations have a name starting with operations/${within}; to sort them by create_time, use a longer prefix (or list them by name)`,
        );
      }
      const candidates = rows.flatMap((row) => {
        const record = this.toRecord(row.id.slice(prefix.length), this.cellsOf(row));
        return record && predicate(record) ? [record] : [];
      });
      page = sortedPage(order, candidates, { after, pageSize: options.pageSize, ...budget });
    } else {
      page = await readTimeOrderedPage(this.timeIndexReader(), {
        order,
        prefix: orderPrefix(this.prefix, order),
        after,
        pageSize: options.pageSize,
        accept: predicate,
        ...budget,
      });
    }
    return {
      operations: page.records,
      nextPageToken: page.next === undefined ? '' : this.tokens.encode(page.next, scope),
    };
  }

  private timeIndexReader(): TimeIndexReader {
    return {
      scan: async (prefix, after, limit) =>
        (await this.scan(prefix, after, limit, INDEX)).map((row) => ({ key: row.id })),
      findMany: (ids) => this.findMany(ids),
      drop: (key) => {
        this.call(() => this.table.mutate({ key, method: 'delete' }, { gaxOptions: gax() })).catch(
          () => undefined,
        );
      },
      now: () => this.now(),
    };
  }

  /** Writes the time-ordered index entries of an operation, with the cells' timestamp. */
  private async writeTimeIndex(
    id: string,
    createMs: number,
    parentId: string | undefined,
    timestampMicros: number,
  ): Promise<void> {
    await this.call(() =>
      this.table.mutate(
        timeIndexKeys(this.prefix, id, createMs, parentId).map((key) => ({
          key,
          method: 'insert',
          data: { [INDEX]: { t: { value: String(createMs), timestamp: timestampMicros } } },
        })),
        { gaxOptions: gax() },
      ),
    );
  }

  private timeKeys(id: string, cells: Cells): string[] {
    const parentId = cells.P === undefined ? undefined : operationIdOf(cells.P);
    return cells.C === undefined ? [] : timeIndexKeys(this.prefix, id, Number(cells.C), parentId);
  }

  /**
   * After the terminal write: the time-index entries take the completion time as timestamp (so
   * that they expire with the operation) and lose their running-time version.
   */
  private async expireTimeIndex(id: string, cells: Cells, now: number): Promise<void> {
    const keys = this.timeKeys(id, cells);
    try {
      await this.call(() =>
        this.table.mutate(
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
          { gaxOptions: gax() },
        ),
      );
    } catch (err) {
      log.warn('could not date the time-index entries; they stay until the operation is deleted', {
        operation: operationName(id),
        error: err,
      });
    }
  }

  async recordHistory(
    name: string,
    entry: HistoryEntry,
    options: { duplicateIfSeen?: boolean } = {},
  ): Promise<void> {
    const id = operationIdOf(name);
    if (options.duplicateIfSeen) {
      // One conditional write: DUPLICATE when an entry of this eventId is stored, else as given.
      // (The operation was read a moment ago; a delete racing this could leave a row of history
      // alone, which its max-age GC removes.)
      // Entries are JSON objects whose first field is the eventId; a value filter is a full match.
      const seen = `^\\{"eventId":${escapeRegExp(JSON.stringify(entry.eventId))},.*$`;
      await this.call(() =>
        this.table
          .row(this.opKey(id))
          .filter(
            [{ family: HISTORY_FAMILY }, { column: HISTORY_EVENTS_COLUMN }, { value: seen }],
            {
              onMatch: historyMutations({ ...entry, outcome: 'DUPLICATE' }),
              onNoMatch: historyMutations(entry),
              gaxOptions: gax(),
            },
          ),
      );
      return;
    }
    // Only onto an existing operation: never a row holding nothing but history.
    await this.call(() =>
      this.table.row(this.opKey(id)).filter(column('C'), {
        onMatch: historyMutations(entry),
        onNoMatch: [],
        gaxOptions: gax(),
      }),
    );
  }

  async history(name: string): Promise<HistoryRecord> {
    const id = operationIdOf(name);
    const [rows] = await this.call(() =>
      this.table.getRows({
        keys: [this.opKey(id)],
        filter: [
          {
            interleave: [
              [{ family: STATE }, { column: /^[CD]$/ }, { column: { cellLimit: 1 } }],
              [{ family: HISTORY_FAMILY }, { column: { cellLimit: HISTORY_VERSIONS } }],
            ],
          },
        ],
        gaxOptions: gax(),
      }),
    );
    const row = rows[0] as unknown as HistoryRow | undefined;
    const created = row?.data[STATE]?.C?.[0]?.value;
    const done = row?.data[STATE]?.D?.[0]?.value;
    const expired = done !== undefined && this.isExpired({ D: String(done) });
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

  async listChildren(parent: string, options: PageOptions): Promise<Page> {
    const parentId = operationIdOf(parent);
    if (!(await this.find(parentId))) throw notFound(`operation ${parent} not found`);
    if (options.orderBy !== undefined) {
      const order = options.orderBy;
      const scope = `children\n${parent}\norderBy=${order}`;
      const after = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
      const page = await readTimeOrderedPage(this.timeIndexReader(), {
        order,
        prefix: orderPrefix(this.prefix, order, parentId),
        after,
        pageSize: options.pageSize,
        accept: (record) => record.parent === parent,
        maxBytes: this.pageMaxBytes,
        bytesOf: operationBytes,
      });
      return {
        operations: page.records,
        nextPageToken: page.next === undefined ? '' : this.tokens.encode(page.next, scope),
      };
    }
    const scope = `children\n${parent}`;
    const position = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
    const prefix = `${this.prefix}c/${parentId}/`;
    const operations: OperationRecord[] = [];
    let cursor = position;
    let bytes = 0;
    const batchSize = Math.min(options.pageSize + 1, 1000);
    for (;;) {
      const entries = await this.scan(prefix, cursor, batchSize, INDEX);
      const ids = entries.map((row) => row.id.slice(prefix.length));
      const found = await this.findMany(ids);
      for (const [index, id] of ids.entries()) {
        const before = cursor;
        cursor = id;
        const record = found.get(id);
        if (!record || record.parent !== parent) {
          this.dropDanglingIndex(entries[index] as RawRow, record === undefined);
          continue;
        }
        bytes += operationBytes(record);
        if (operations.length > 0 && bytes > this.pageMaxBytes && before !== undefined) {
          return { operations, nextPageToken: this.tokens.encode(before, scope) };
        }
        operations.push(record);
        if (operations.length === options.pageSize) {
          const more = index < ids.length - 1 || ids.length === batchSize;
          return { operations, nextPageToken: more ? this.tokens.encode(id, scope) : '' };
        }
      }
      if (entries.length < batchSize) return { operations, nextPageToken: '' };
    }
  }

  async traverse(name: string, options: { maxDepth: number }): Promise<OperationNode> {
    await this.get(name);
    const root: OperationNode = { operation: name, childrenOperations: [] };
    let level = [root];
    let nodes = 1;
    for (let depth = 0; depth < options.maxDepth && level.length > 0; depth++) {
      const next: OperationNode[] = [];
      for (const node of level) {
        let pageToken = '';
        do {
          const page = await this.listChildren(node.operation, { pageSize: 1000, pageToken });
          for (const child of page.operations) {
            const childNode = { operation: child.operation.name, childrenOperations: [] };
            node.childrenOperations.push(childNode);
            next.push(childNode);
            if (++nodes > defaults.traverseNodesMax) {
              throw new LroError(
                Code.OUT_OF_RANGE,
                `the tree below ${name} has more than ${defaults.traverseNodesMax} operations; use a smaller maxDepth`,
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

  async delete(name: string): Promise<void> {
    const id = operationIdOf(name);
    const cells = await this.readCells(id);
    if (!cells || this.isExpired(cells)) throw notFound(`operation ${name} not found`);
    // Mark the deletion first, then look for children (see the top of this file).
    const mark = `Z${randomBytes(8).toString('hex')}`;
    const [marked] = await this.call(() =>
      this.table.row(this.opKey(id)).filter(column('C'), {
        onMatch: [{ method: 'insert', data: { [STATE]: { [mark]: { value: '1' } } } }],
        onNoMatch: [],
        gaxOptions: gax(),
      }),
    );
    if (!marked) throw notFound(`operation ${name} not found`);
    const keys: string[] = [];
    if (cells.P) keys.push(this.childKey(operationIdOf(cells.P), id));
    keys.push(...this.timeKeys(id, cells));
    try {
      const { live, entries } = await this.childEntries(id);
      if (live > 0) {
        throw failedPrecondition(
          `operation ${name} has ${live} child operation${live === 1 ? '' : 's'}; delete ${live === 1 ? 'it' : 'them'} first`,
        );
      }
      keys.push(...entries);
    } catch (err) {
      await this.call(() =>
        this.table.mutate(
          { key: this.opKey(id), method: 'delete', data: [`${STATE}:${mark}`] },
          { gaxOptions: gax() },
        ),
      ).catch(() => undefined);
      throw err;
    }
    // The row goes (only if our mark is still there: nobody deleted and recreated it meanwhile),
    // leaving the tombstone of its request ID; the binding of the request ID is released last, so
    // that a retry of the create that still finds it answers with the deleted operation instead
    // of writing it again (see the top of this file).
    const now = this.now();
    const record = this.toRecord(id, cells) as OperationRecord;
    const tombstone: Tombstone = {
      operation: record.operation,
      createTime: record.createTime.getTime(),
      deleteTime: now,
    };
    await this.call(() =>
      this.table.row(this.opKey(id)).filter(column(mark), {
        onMatch:
          cells.Q === undefined
            ? [{ method: 'delete' }]
            : [
                { method: 'delete', data: [STATE] },
                this.insert({ [tombstoneColumn(cells.Q)]: JSON.stringify(tombstone) }, now * 1000),
              ],
        onNoMatch: [],
        gaxOptions: gax(),
      }),
    );
    if (keys.length > 0) {
      await this.call(() =>
        this.table.mutate(
          keys.map((key) => ({ key, method: 'delete' })),
          { gaxOptions: gax() },
        ),
      );
    }
    if (cells.Q !== undefined) await this.releaseRequestId(cells.Q, id);
  }

  /**
   * The children index of an operation: how many entries are live children (existing and naming
   * it), and every entry's row key. An entry whose operation is not written yet belongs to a
   * create in flight: it either writes the child (live) or, having seen the deletion mark, removes
   * its entry; that is awaited for a moment. An old such entry is a create that crashed.
   */
  private async childEntries(id: string): Promise<{ live: number; entries: string[] }> {
    const prefix = `${this.prefix}c/${id}/`;
    const entries: string[] = [];
    const pending: string[] = [];
    let live = 0;
    let cursor: string | undefined;
    for (;;) {
      const rows = await this.scan(prefix, cursor, 1000, INDEX);
      const ids = rows.map((row) => row.id.slice(prefix.length));
      const found = await this.findMany(ids);
      for (const [index, row] of rows.entries()) {
        entries.push(row.id);
        const childId = ids[index] as string;
        const record = found.get(childId);
        if (record) {
          if (record.parent === operationName(id)) live++;
          continue;
        }
        const created = Number(row.data[INDEX]?.c?.[0]?.value ?? 0);
        if (this.now() - created < DANGLING_INDEX_MS) pending.push(childId);
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
        this.findMany(ids),
        this.call(() =>
          this.table.getRows({
            keys: ids.map((childId) => this.childKey(id, childId)),
            gaxOptions: gax(),
          }),
        ),
      ]);
      const stillIndexed = new Set((entryRows[0] as unknown as RawRow[]).map((row) => row.id));
      for (const childId of ids) {
        const record = found.get(childId);
        if (record) {
          if (record.parent === operationName(id)) live++;
        } else if (stillIndexed.has(this.childKey(id, childId))) {
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

  async requestCancel(name: string): Promise<WriteResult> {
    const id = operationIdOf(name);
    const now = this.now();
    const [applied] = await this.call(() =>
      this.table
        .row(this.opKey(id))
        .filter(this.unchangedFilter([{ interleave: [column('D'), column('X')] }]), {
          onMatch: [this.insert({ X: String(now), U: String(now) }, RUNNING_TIMESTAMP_MICROS)],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    return { operation: (await this.get(name)).operation, applied: applied === true };
  }

  async complete(
    name: string,
    outcome: Outcome,
    options: CompleteOptions = {},
  ): Promise<WriteResult> {
    const id = operationIdOf(name);
    const seen = options.eventId === undefined ? undefined : eventColumn(options.eventId);
    for (let attempt = 0; attempt < COMPLETE_ATTEMPTS; attempt++) {
      const current = await this.readCells(id, seen);
      if (!current || this.isExpired(current)) throw notFound(`operation ${name} not found`);
      const operation = () => (this.toRecord(id, current) as OperationRecord).operation;
      const reason = this.identityConflict(current, seen, options.publishTime);
      if (reason !== undefined) return { operation: operation(), applied: false, reason };
      if (current.D !== undefined) return { operation: operation(), applied: false };
      const written = await this.writeTerminal(
        id,
        current,
        outcome,
        options,
        seen === undefined ? [] : [column(seen)],
        seen,
      );
      if (written) return { operation: written, applied: true };
    }
    throw new LroError(Code.ABORTED, `operation ${name} kept changing; retry`);
  }

  /**
   * The terminal write over the cells read: the operation when it applied, undefined when the
   * row changed since (`extraConflicts` adds more such changes).
   */
  private async writeTerminal(
    id: string,
    current: Cells,
    outcome: Outcome,
    options: CompleteOptions,
    extraConflicts: unknown[][] = [],
    seen?: string,
  ): Promise<Operation | undefined> {
    const now = this.now();
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
    const [applied] = await this.call(() =>
      this.table.row(this.opKey(id)).filter(this.unchangedFilter(anyOf(conflicts), seen), {
        onMatch: [
          { method: 'delete', data: [STATE] },
          this.insert(next, now * 1000),
          ...historyMutations(options.history),
        ],
        onNoMatch: [],
        gaxOptions: gax(),
      }),
    );
    if (!applied) return undefined;
    if (current.P !== undefined) await this.expireIndexEntry(current.P, id, current.C, now);
    await this.expireTimeIndex(id, current, now);
    return (this.toRecord(id, next) as OperationRecord).operation;
  }

  async updateMetadata(
    name: string,
    metadata: Any,
    options: UpdateMetadataOptions,
  ): Promise<WriteResult> {
    const id = operationIdOf(name);
    const key = metadataKey(options.emitTime, options.eventId);
    const seen = eventColumn(options.eventId);
    const now = this.now();
    const newer = [...column('K'), { value: { start: { value: key, inclusive: true } } }];
    const blocking = [column('D'), newer, column(seen), ...this.createdAfter(options.publishTime)];
    const [applied] = await this.call(() =>
      this.table
        .row(this.opKey(id))
        .filter(this.unchangedFilter([{ interleave: blocking }], seen), {
          onMatch: [
            this.insert(
              { M: JSON.stringify(metadata), K: key, U: String(now), H: padMs(now), [seen]: '1' },
              RUNNING_TIMESTAMP_MICROS,
            ),
            ...historyMutations(options.history),
          ],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    // Applied: the operation is running and this metadata is its newest, so its state is known
    // without reading the row back.
    if (applied === true) return { operation: { name, done: false, metadata }, applied: true };
    return this.notApplied(name, seen, options.publishTime);
  }

  /** The stored state after an event's write did not apply, and why when it is the identity. */
  private async notApplied(
    name: string,
    seen: string | undefined,
    publishTime: Date | undefined,
  ): Promise<WriteResult> {
    const id = operationIdOf(name);
    const cells = await this.readCells(id, seen);
    const record = cells && this.toRecord(id, cells);
    if (!cells || !record) throw notFound(`operation ${name} not found`);
    const reason = this.identityConflict(cells, seen, publishTime);
    return reason === undefined
      ? { operation: record.operation, applied: false }
      : { operation: record.operation, applied: false, reason };
  }

  /**
   * Whether an event cannot apply to the operation in `cells` because of who it is: published
   * before the operation was created, or its eventId (column `seen`) took effect already.
   */
  private identityConflict(
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

  /**
   * A predicate part yielding cells when the operation was created after `publishTime` (C sorts
   * as bytes like the number it holds while both have 13 digits); nothing without a time.
   */
  private createdAfter(publishTime: Date | undefined): unknown[][] {
    if (publishTime === undefined) return [];
    const published = createTimeValue(publishTime.getTime());
    return [[...column('C'), { value: { start: { value: published, inclusive: false } } }]];
  }

  async heartbeat(name: string, options: HeartbeatOptions): Promise<HeartbeatResult> {
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
      ...this.createdAfter(options.publishTime),
    ];
    const [applied] = await this.call(() =>
      this.table
        .row(this.opKey(id))
        .filter(this.unchangedFilter([{ interleave: blocking }], seen), {
          onMatch: [
            this.insert({ H: value }, RUNNING_TIMESTAMP_MICROS),
            ...historyMutations(options.history),
          ],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    if (applied === true) return { applied: true };
    const { operation, reason } = await this.notApplied(name, seen, options.publishTime);
    return reason === undefined
      ? { applied: false, operation }
      : { applied: false, operation, reason };
  }

  async listDue(now: Date, limit: number): Promise<DueEntry[]> {
    const prefix = `${this.prefix}d/`;
    const [rows] = await this.call(() =>
      this.table.getRows({
        ranges: [
          {
            start: { value: prefix, inclusive: true },
            end: { value: `${prefix}${padMs(now.getTime() + 1)}`, inclusive: false },
          },
        ],
        limit,
        filter: [{ family: INDEX }, { column: { cellLimit: 1 } }],
        gaxOptions: gax(),
      }),
    );
    const entries: DueEntry[] = [];
    for (const row of rows as unknown as RawRow[]) {
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

  async expire(name: string, now: Date): Promise<ExpireResult> {
    const id = operationIdOf(name);
    let reads = 0;
    for (let attempt = 0; attempt < COMPLETE_ATTEMPTS; attempt++) {
      const current = await this.readCells(id);
      reads++;
      if (!current || this.isExpired(current)) return { state: 'missing', reads };
      if (current.D !== undefined) {
        const operation = (this.toRecord(id, current) as OperationRecord).operation;
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
      const written = await this.writeTerminal(id, current, { error }, {}, [renewed]);
      if (written) return { state: 'ended', operation: written, limit: due.limit, reads };
    }
    throw new LroError(Code.ABORTED, `operation ${name} kept changing; retry`);
  }

  async reschedule(entry: DueEntry, due: Date | undefined): Promise<void> {
    const id = operationIdOf(entry.operation);
    if (due !== undefined) {
      const key = this.dueKey(due.getTime(), id);
      if (key === entry.key) return;
      // The new entry first: a crash in between leaves two entries, and the earlier one is
      // found due, checked and moved onto the later one.
      await this.call(() =>
        this.table.mutate(
          {
            key,
            method: 'insert',
            data: {
              [INDEX]: { d: { value: String(due.getTime()), timestamp: RUNNING_TIMESTAMP_MICROS } },
            },
          },
          { gaxOptions: gax() },
        ),
      );
    }
    await this.call(() =>
      this.table.mutate({ key: entry.key, method: 'delete' }, { gaxOptions: gax() }),
    );
  }

  async close(): Promise<void> {
    await this.bigtable.close();
  }

  /**
   * A predicate that yields cells (so CheckAndMutateRow takes onMatch) only when the operation
   * exists and `blocking` yields nothing: condition(blocking ? block all : column C).
   */
  private unchangedFilter(blocking: unknown[], eventColumnName?: string) {
    // First down to the state cells (and the one event-ID cell looked for), so that the
    // condition, which Bigtable (and far more the emulator) evaluates over every cell it is
    // given, does not pass over all the event IDs of a busy operation.
    const cells =
      eventColumnName === undefined
        ? STATE_RANGE
        : { interleave: [[STATE_RANGE], [{ column: eventColumnName }]] };
    return [
      cells,
      {
        condition: {
          test: blocking,
          pass: [{ all: false }],
          fail: column('C'),
        },
      },
    ];
  }

  private insert(cells: Cells, timestamp: number) {
    const data: Record<string, { value: string; timestamp: number }> = {};
    for (const [name, value] of Object.entries(cells)) {
      if (value !== undefined) data[name] = { value, timestamp };
    }
    return { method: 'insert', data: { [STATE]: data } };
  }

  /** The child's index entry takes the completion time as timestamp, so it expires with it. */
  private async expireIndexEntry(
    parent: string,
    id: string,
    created: string | undefined,
    now: number,
  ) {
    try {
      await this.call(() =>
        this.table.mutate(
          {
            key: this.childKey(operationIdOf(parent), id),
            method: 'insert',
            data: { [INDEX]: { c: { value: created ?? String(now), timestamp: now * 1000 } } },
          },
          { gaxOptions: gax() },
        ),
      );
      // Remove the running-time cell (its timestamp is far in the future).
      await this.call(() =>
        this.table.mutate(
          {
            key: this.childKey(operationIdOf(parent), id),
            method: 'delete',
            data: [
              {
                column: `${INDEX}:c`,
                time: {
                  start: new Date(now + 1),
                  end: new Date(RUNNING_TIMESTAMP_MICROS / 1000 + 1),
                },
              },
            ],
          },
          { gaxOptions: gax() },
        ),
      );
    } catch (err) {
      log.warn(
        'could not date the children index entry; it will stay until the parent is deleted',
        {
          operation: operationName(id),
          error: err,
        },
      );
    }
  }

  private dropDanglingIndex(row: RawRow, missing: boolean) {
    const created = Number(row.data[INDEX]?.c?.[0]?.value ?? 0);
    if (missing && this.now() - created < DANGLING_INDEX_MS) return;
    this.call(() =>
      this.table.mutate({ key: row.id, method: 'delete' }, { gaxOptions: gax() }),
    ).catch(() => undefined);
  }

  /** Rows of `prefix` (narrowed to `prefix + within`), after the position `after`. */
  private async scan(
    prefix: string,
    after: string | undefined,
    limit: number,
    family = STATE,
    within = '',
  ): Promise<RawRow[]> {
    const first = prefix + within;
    const [rows] = await this.call(() =>
      this.table.getRows({
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
        gaxOptions: gax(),
      }),
    );
    return rows as unknown as RawRow[];
  }

  private cellsOf(row: RawRow): Cells {
    const cells: Cells = {};
    const family = row.data[STATE] ?? {};
    for (const [name, versions] of Object.entries(family)) {
      const value = versions[0]?.value;
      if (value !== undefined) cells[name as keyof Cells] = String(value);
    }
    return cells;
  }

  /** The operation's cells; undefined when there is no operation (no row, or a tombstone). */
  private async readCells(id: string, extraColumn?: string): Promise<Cells | undefined> {
    const cells = await this.readRow(id, extraColumn);
    return cells?.C === undefined ? undefined : cells;
  }

  /** The row's state cells, and `extraColumn` (an event or tombstone column) when present. */
  private async readRow(id: string, extraColumn?: string): Promise<Cells | undefined> {
    const filter =
      extraColumn === undefined
        ? STATE_CELLS
        : [
            { family: STATE },
            { interleave: [[STATE_RANGE], [{ column: extraColumn }]] },
            { column: { cellLimit: 1 } },
          ];
    const [rows] = await this.call(() =>
      this.table.getRows({ keys: [this.opKey(id)], filter, gaxOptions: gax() }),
    );
    const row = rows[0] as unknown as RawRow | undefined;
    return row && this.cellsOf(row);
  }

  private async find(id: string): Promise<OperationRecord | undefined> {
    const cells = await this.readCells(id);
    return cells && this.toRecord(id, cells);
  }

  private async findMany(ids: string[]): Promise<Map<string, OperationRecord>> {
    const found = new Map<string, OperationRecord>();
    if (ids.length === 0) return found;
    const [rows] = await this.call(() =>
      this.table.getRows({
        keys: ids.map((id) => this.opKey(id)),
        filter: STATE_CELLS,
        gaxOptions: gax(),
      }),
    );
    const prefix = `${this.prefix}o/`;
    for (const row of rows as unknown as RawRow[]) {
      const id = row.id.slice(prefix.length);
      const record = this.toRecord(id, this.cellsOf(row));
      if (record) found.set(id, record);
    }
    return found;
  }

  private isExpired(cells: Cells): boolean {
    return cells.D !== undefined && Number(cells.D) + this.retentionMs <= this.now();
  }

  /** The record in a row's cells; undefined when the row is not a live operation. */
  private toRecord(id: string, cells: Cells): OperationRecord | undefined {
    if (cells.C === undefined || this.isExpired(cells)) return undefined;
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

  /**
   * Makes the first calls of the read and conditional-write paths (credentials, the gapic client,
   * the channel) on a row no operation uses, and writes nothing: a ReadRows of that row and a
   * CheckAndMutateRow whose only mutation is on a predicate match, which an absent row never has.
   * For an instance's start (shared/service/runtime/warm-up.ts); rejects as the calls do.
   */
  async warmUp(timeoutMs: number): Promise<void> {
    const key = `${this.prefix}~warm-up`;
    await this.call(() =>
      this.table.getRows({ keys: [key], filter: column('C'), gaxOptions: { timeout: timeoutMs } }),
    );
    await this.call(() =>
      this.table.row(key).filter(column('C'), {
        onMatch: [{ method: 'delete' }],
        onNoMatch: [],
        gaxOptions: { timeout: timeoutMs },
      }),
    );
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storageError(err);
    }
  }
}
