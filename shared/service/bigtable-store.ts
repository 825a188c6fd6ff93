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
 *   P c/{parentId}/{id}   children index, family `i`, column `c` = the child's create time
 *   P r/{requestId}       request-ID index, family `i`, column `o` = the operation ID
 *   P d/{due ms, 15 digits}/{id}
 *                         due-time index of operations with a deadline or heartbeat timeout,
 *                         family `i`, column `d`; checked lazily by the sweeper (sweeper.ts)
 *
 * Why this shape:
 * - Every conditional write is one CheckAndMutateRow on one row: create-if-absent (caller IDs are
 *   never overwritten), terminal write-once (of racing completions exactly one matches), and
 *   newest-metadata-wins (the write applies only when no stored K is >= the event's key, and the
 *   operation is not done). K sorts by emit time, then event ID, so duplicates of one event and
 *   late events change nothing.
 * - Children are listed by a prefix scan of `c/{parentId}/`, never a table scan; IDs cannot
 *   contain "/", so one parent's prefix never covers another's.
 * - Deleting a parent is refused while it has children (AIP-135). Race-free without
 *   transactions: a child's create writes its index entry, then checks the parent row for a
 *   deletion mark; a delete writes the mark, then scans the index. Whichever comes second sees the
 *   other's write, so a child is never created under a parent that a delete removed.
 * - A request ID is bound (`r/{requestId}`) before the operation is written and released when the
 *   create fails for good (ALREADY_EXISTS, parent gone), so it names only a successful create; a
 *   binding to an operation that is another's or expired is stale and taken over.
 * - Retention: both families have the GC rule max-age = retention. Cells of running operations
 *   carry a far-future timestamp, so GC never touches them; the terminal write rewrites the whole
 *   row with the completion time as timestamp, so GC removes finished operations once retention
 *   has passed. GC is lazy, so reads also hide operations whose D + retention is past.
 */
import { randomBytes } from 'node:crypto';
import { Bigtable, type Table } from '@google-cloud/bigtable';
import { deadlineExceededMessage, dueOf, type Liveness } from '../sdk/deadlines.js';
import { defaults } from '../sdk/defaults.js';
import {
  alreadyExists,
  Code,
  failedPrecondition,
  invalidArgument,
  LroError,
  notFound,
} from '../sdk/errors.js';
import { log } from '../sdk/log.js';
import {
  type Any,
  AnySchema,
  newOperationId,
  type Operation,
  OperationIdSchema,
  type OperationNode,
  operationIdOf,
  operationName,
} from '../sdk/model.js';
import type { Config } from './config.js';
import { compileFilter } from './filter.js';
import { PageTokens } from './page-token.js';
import type {
  CompleteOptions,
  CreateOperationOptions,
  DueEntry,
  ExpireResult,
  HeartbeatResult,
  ListOptions,
  OperationRecord,
  OperationStore,
  Outcome,
  Page,
  PageOptions,
  UpdateMetadataOptions,
  WriteResult,
} from './store.js';

const STATE = 's';
const INDEX = 'i';
/** Timestamp (µs) of the cells of running operations: 2200-01-01, out of GC's reach. */
export const RUNNING_TIMESTAMP_MICROS = Date.UTC(2200, 0, 1) * 1000;
/** Per-call deadline, so that a stalled Bigtable fails the call (and the delivery) instead of hanging. */
const CALL_TIMEOUT_MS = 15_000;
/** Index rows whose operation is missing are removed after this long (a create that crashed). */
const DANGLING_INDEX_MS = 60_000;
const COMPLETE_ATTEMPTS = 8;
/** How long a delete waits for children whose create is in flight to be written or given up. */
const IN_FLIGHT_CREATE_WAIT_MS = 3_000;

type Cells = Partial<
  Record<'C' | 'U' | 'P' | 'Q' | 'M' | 'K' | 'X' | 'D' | 'R' | 'L' | 'T' | 'H', string>
>;

interface RawRow {
  id: string;
  data: Record<string, Record<string, { value: string }[]>>;
}

/** Bigtable's client and table for a config (emulator-aware). */
export function openTable(config: Pick<Config, 'projectId' | 'bigtable'>): {
  bigtable: Bigtable;
  table: Table;
} {
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
    if (exists) return;
    const rule = {
      age: { seconds: Math.ceil(config.retentionMs / 1000) },
      versions: 1,
      union: true,
    };
    try {
      await table.create({
        families: [
          { name: STATE, rule },
          { name: INDEX, rule },
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

/** Fresh call options each time: the client mutates them (it appends its metrics interceptor). */
const gax = () => ({ timeout: CALL_TIMEOUT_MS });
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
      return await this.insertOperation(id, now, parentId, options);
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
    for (let attempt = 0; attempt < 3; attempt++) {
      const [exists] = await this.call(() =>
        this.table.row(this.opKey(id)).filter(column('C'), {
          onMatch: [],
          onNoMatch: [this.insert(cells, RUNNING_TIMESTAMP_MICROS)],
          gaxOptions: gax(),
        }),
      );
      if (!exists) return this.toRecord(id, cells) as OperationRecord;
      const existing = await this.readCells(id);
      if (!existing) continue; // deleted in between: try again
      if (this.isExpired(existing)) {
        await this.call(() => this.table.mutate({ key: this.opKey(id), method: 'delete' }));
        continue;
      }
      if (options.requestId !== undefined && existing.Q === options.requestId) {
        return this.toRecord(id, existing) as OperationRecord;
      }
      if (parentId !== undefined && existing.P !== options.parent) {
        await this.call(() =>
          this.table.mutate({ key: this.childKey(parentId, id), method: 'delete' }),
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
      this.table.mutate({ key: this.childKey(parentId, id), method: 'delete' }),
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
    const scope = `list\n${options.filter}`;
    const position = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
    const prefix = `${this.prefix}o/`;
    const operations: OperationRecord[] = [];
    let cursor = position;
    let examined = 0;
    let bytes = 0;
    const batchSize = Math.min(Math.max(options.pageSize * 2, 100), 1000);
    for (;;) {
      const rows = await this.scan(prefix, cursor, batchSize);
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

  async listChildren(parent: string, options: PageOptions): Promise<Page> {
    const parentId = operationIdOf(parent);
    if (!(await this.find(parentId))) throw notFound(`operation ${parent} not found`);
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
    const keys = [this.opKey(id)];
    if (cells.P) keys.push(this.childKey(operationIdOf(cells.P), id));
    if (cells.Q) keys.push(this.requestKey(cells.Q));
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
    await this.call(() =>
      this.table.mutate(
        keys.map((key) => ({ key, method: 'delete' })),
        { gaxOptions: gax() },
      ),
    );
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
    for (let attempt = 0; attempt < COMPLETE_ATTEMPTS; attempt++) {
      const current = await this.readCells(id);
      if (!current || this.isExpired(current)) throw notFound(`operation ${name} not found`);
      if (current.D !== undefined) {
        return {
          operation: (this.toRecord(id, current) as OperationRecord).operation,
          applied: false,
        };
      }
      const written = await this.writeTerminal(id, current, outcome, options);
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
  ): Promise<Operation | undefined> {
    const now = this.now();
    const next: Cells = { ...current, U: String(now), D: String(now) };
    next.R = JSON.stringify(
      'error' in outcome ? { error: outcome.error } : { response: outcome.response },
    );
    if (options.metadata !== undefined) next.M = JSON.stringify(options.metadata);
    // Conflicts: it became done, or (when we keep the stored metadata) newer metadata arrived,
    // or a cancellation was recorded since our read. Any of them: read again and retry.
    const conflicts: unknown[][] = [column('D'), ...extraConflicts];
    if (options.metadata === undefined) {
      conflicts.push(
        current.K === undefined
          ? column('K')
          : [...column('K'), { value: { start: { value: current.K, inclusive: false } } }],
      );
    }
    if (current.X === undefined) conflicts.push(column('X'));
    const [applied] = await this.call(() =>
      this.table.row(this.opKey(id)).filter(this.unchangedFilter(anyOf(conflicts)), {
        onMatch: [{ method: 'delete', data: [STATE] }, this.insert(next, now * 1000)],
        onNoMatch: [],
        gaxOptions: gax(),
      }),
    );
    if (!applied) return undefined;
    if (current.P !== undefined) await this.expireIndexEntry(current.P, id, current.C, now);
    return (this.toRecord(id, next) as OperationRecord).operation;
  }

  async updateMetadata(
    name: string,
    metadata: Any,
    options: UpdateMetadataOptions,
  ): Promise<WriteResult> {
    const id = operationIdOf(name);
    const key = metadataKey(options.emitTime, options.eventId);
    const now = this.now();
    const newer = [...column('K'), { value: { start: { value: key, inclusive: true } } }];
    const [applied] = await this.call(() =>
      this.table
        .row(this.opKey(id))
        .filter(this.unchangedFilter([{ interleave: [column('D'), newer] }]), {
          onMatch: [
            this.insert(
              { M: JSON.stringify(metadata), K: key, U: String(now), H: padMs(now) },
              RUNNING_TIMESTAMP_MICROS,
            ),
          ],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    // Applied: the operation is running and this metadata is its newest, so its state is known
    // without reading the row back.
    if (applied === true) return { operation: { name, done: false, metadata }, applied: true };
    return { operation: (await this.get(name)).operation, applied: false };
  }

  async heartbeat(name: string, options: { time: Date }): Promise<HeartbeatResult> {
    const id = operationIdOf(name);
    const value = padMs(options.time.getTime());
    // One CheckAndMutateRow writing one cell; never applied to a done operation, and never
    // moving the heartbeat back (a later one applied first).
    const newer = [...column('H'), { value: { start: { value, inclusive: true } } }];
    const [applied] = await this.call(() =>
      this.table
        .row(this.opKey(id))
        .filter(this.unchangedFilter([{ interleave: [column('D'), newer] }]), {
          onMatch: [this.insert({ H: value }, RUNNING_TIMESTAMP_MICROS)],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    if (applied === true) return { applied: true };
    return { applied: false, operation: (await this.get(name)).operation };
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
  private unchangedFilter(blocking: unknown[]) {
    return [
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
    this.call(() => this.table.mutate({ key: row.id, method: 'delete' })).catch(() => undefined);
  }

  private async scan(
    prefix: string,
    after: string | undefined,
    limit: number,
    family = STATE,
  ): Promise<RawRow[]> {
    const [rows] = await this.call(() =>
      this.table.getRows({
        ranges: [
          {
            start:
              after === undefined
                ? { value: prefix, inclusive: true }
                : { value: prefix + after, inclusive: false },
            end: { value: prefixEnd(prefix), inclusive: false },
          },
        ],
        limit,
        filter: [{ family }, { column: { cellLimit: 1 } }],
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

  private async readCells(id: string): Promise<Cells | undefined> {
    const [rows] = await this.call(() =>
      this.table.getRows({
        keys: [this.opKey(id)],
        filter: [{ family: STATE }, { column: { cellLimit: 1 } }],
        gaxOptions: gax(),
      }),
    );
    const row = rows[0] as unknown as RawRow | undefined;
    if (!row) return undefined;
    const cells = this.cellsOf(row);
    return cells.C === undefined ? undefined : cells;
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
        filter: [{ family: STATE }, { column: { cellLimit: 1 } }],
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
    return record;
  }

  /**
   * Makes the first calls of the read and conditional-write paths (credentials, the gapic client,
   * the channel) on a row no operation uses, and writes nothing: a ReadRows of that row and a
   * CheckAndMutateRow whose only mutation is on a predicate match, which an absent row never has.
   * For an instance's start (shared/service/warm-up.ts); rejects as the calls do.
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
