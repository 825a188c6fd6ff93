/**
 * The dead-letter store on Bigtable, in the operations table (bigtable-store.ts opens it), in
 * row ranges of its own:
 *
 *   P dl/{id}        one row per dead-lettered message, family `s`:
 *                      T dead-letter time (ms)    W reason           O operation
 *                      B data (base64)            A attributes JSON  L replay lease
 *   P df/{sha256}    the last delivery failure of a message body (family `s`, column E), which
 *                    the subscriber records when it fails a delivery, so that a message the
 *                    subscription's policy dead-letters later gets "delivery attempts
 *                    exhausted: <last error>" as its reason
 *
 * Why this shape:
 * - IDs begin with the reversed dead-letter time (dead-letters.ts), so a prefix scan of `dl/`
 *   lists newest first, and the dead-letter topic's message ID, so a redelivered push writes the
 *   same row again instead of a second entry.
 * - Cells carry the dead-letter (or failure) time as timestamp: the family's GC rule (max-age =
 *   retention) removes them once retention has passed; reads hide older entries too, GC being lazy.
 * - Replay takes a lease first: one CheckAndMutateRow that writes `L` only when the entry exists
 *   and holds no lease younger than REPLAY_LEASE_MS, so of two replays at once exactly one
 *   publishes; a replay that crashed after its lease blocks others only until the lease ages.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Code, LroError, notFound } from '../sdk/errors.js';
import { gax, openTable, storageError, type TableConnection } from './bigtable-store.js';
import type { Config } from './config.js';
import { type DeadLetterEntry, DeadLetterIdSchema } from './dead-letters.js';
import { PageTokens } from './page-token.js';

const FAMILY = 's';
/** A replay lease older than this no longer blocks another replay of the entry. */
export const REPLAY_LEASE_MS = 60_000;
const ERROR_MAX_CHARS = 2_000;

type Table = ReturnType<typeof openTable>['table'];
type Client = ReturnType<typeof openTable>['bigtable'];

interface RawRow {
  id: string;
  data: Record<string, Record<string, { value: string; timestamp?: string }[]>>;
}

export interface DeadLetterPage {
  entries: DeadLetterEntry[];
  nextPageToken: string;
}

/** Records and answers the last delivery failure of a message body (used by the subscriber). */
export interface FailureMemory {
  rememberFailure(data: Buffer, error: string): Promise<void>;
}

const column = (name: string) => [{ family: FAMILY }, { column: name }];

export class DeadLetterStore implements FailureMemory {
  private readonly bigtable: Client;
  private readonly table: Table;
  private readonly prefix: string;
  private readonly retentionMs: number;
  private readonly tokens: PageTokens;

  /** Whether close() closes the client (it was opened here, not shared). */
  private readonly ownsClient: boolean;

  /**
   * `shared`: the connection of the operation store of the same instance, so that both use one
   * client (closing the operation store closes it); without, the store opens its own.
   */
  constructor(
    config: Config,
    private readonly now: () => number = Date.now,
    shared?: TableConnection,
  ) {
    ({ bigtable: this.bigtable, table: this.table } = shared ?? openTable(config));
    this.ownsClient = shared === undefined;
    this.prefix = config.bigtable.rowKeyPrefix;
    this.retentionMs = config.retentionMs;
    this.tokens = new PageTokens(config.pageTokenKey);
  }

  private letterKey(id: string) {
    return `${this.prefix}dl/${id}`;
  }
  private failureKey(data: Buffer) {
    return `${this.prefix}df/${createHash('sha256').update(data).digest('base64url')}`;
  }

  /** Stores an entry (idempotent: the same ID writes the same cells). Throws when not stored. */
  async put(entry: DeadLetterEntry): Promise<void> {
    const time = entry.deadLetterTime.getTime();
    const cells: Record<string, string> = {
      T: String(time),
      W: entry.reason,
      B: entry.data.toString('base64'),
      A: JSON.stringify(entry.attributes),
    };
    if (entry.operation !== undefined) cells.O = entry.operation;
    const data: Record<string, { value: string; timestamp: number }> = {};
    for (const [name, value] of Object.entries(cells))
      data[name] = { value, timestamp: time * 1000 };
    await this.call(() =>
      this.table.mutate(
        { key: this.letterKey(entry.id), method: 'insert', data: { [FAMILY]: data } },
        { gaxOptions: gax() },
      ),
    );
  }

  /** The entry; NOT_FOUND when absent or past retention, INVALID_ARGUMENT for a malformed ID. */
  async get(id: string): Promise<DeadLetterEntry> {
    checkId(id);
    const [rows] = await this.call(() =>
      this.table.getRows({
        keys: [this.letterKey(id)],
        filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
        gaxOptions: gax(),
      }),
    );
    const row = rows[0] as unknown as RawRow | undefined;
    const entry = row && this.toEntry(id, row);
    if (!entry) throw notFound(`dead letter deadLetters/${id} not found`);
    return entry;
  }

  /** Newest first; page tokens as for operations (signed, scoped, dated). */
  async list(options: { pageSize: number; pageToken: string }): Promise<DeadLetterPage> {
    const scope = 'deadLetters';
    const after = options.pageToken ? this.tokens.decode(options.pageToken, scope) : undefined;
    const prefix = `${this.prefix}dl/`;
    const entries: DeadLetterEntry[] = [];
    let cursor = after;
    const batch = Math.min(options.pageSize + 1, 1000);
    for (;;) {
      const [rows] = await this.call(() =>
        this.table.getRows({
          ranges: [
            {
              start:
                cursor === undefined
                  ? { value: prefix, inclusive: true }
                  : { value: prefix + cursor, inclusive: false },
              end: { value: `${this.prefix}dl0`, inclusive: false },
            },
          ],
          limit: batch,
          filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
          gaxOptions: gax(),
        }),
      );
      const raw = rows as unknown as RawRow[];
      for (const [index, row] of raw.entries()) {
        const id = row.id.slice(prefix.length);
        cursor = id;
        const entry = this.toEntry(id, row);
        if (!entry) continue;
        entries.push(entry);
        if (entries.length === options.pageSize) {
          const more = index < raw.length - 1 || raw.length === batch;
          return { entries, nextPageToken: more ? this.tokens.encode(id, scope) : '' };
        }
      }
      if (raw.length < batch) return { entries, nextPageToken: '' };
    }
  }

  /** Removes an entry; NOT_FOUND when absent. */
  async discard(id: string): Promise<void> {
    await this.get(id);
    await this.remove(id);
  }

  /**
   * Replays an entry: takes the lease, calls `publish` with the entry, removes the entry once
   * `publish` resolved. ABORTED when another replay holds the lease; NOT_FOUND when absent. When
   * `publish` fails the lease is released and the entry stays.
   */
  async replay(id: string, publish: (entry: DeadLetterEntry) => Promise<void>): Promise<void> {
    const entry = await this.get(id);
    const now = this.now();
    const youngLease = [
      ...column('L'),
      { time: { start: new Date(now - REPLAY_LEASE_MS), end: new Date(now + REPLAY_LEASE_MS) } },
    ];
    const [claimed] = await this.call(() =>
      this.table
        .row(this.letterKey(id))
        .filter([{ condition: { test: youngLease, pass: [{ all: false }], fail: column('T') } }], {
          onMatch: [
            {
              method: 'insert',
              data: { [FAMILY]: { L: { value: randomUUID(), timestamp: now * 1000 } } },
            },
          ],
          onNoMatch: [],
          gaxOptions: gax(),
        }),
    );
    if (!claimed) {
      await this.get(id); // NOT_FOUND if it went meanwhile
      throw new LroError(Code.ABORTED, `deadLetters/${id} is being replayed; try again later`);
    }
    try {
      await publish(entry);
    } catch (err) {
      await this.call(() =>
        this.table.mutate(
          { key: this.letterKey(id), method: 'delete', data: [`${FAMILY}:L`] },
          { gaxOptions: gax() },
        ),
      ).catch(() => undefined);
      throw err;
    }
    await this.remove(id);
  }

  async rememberFailure(data: Buffer, error: string): Promise<void> {
    const now = this.now();
    await this.call(() =>
      this.table.mutate(
        {
          key: this.failureKey(data),
          method: 'insert',
          data: {
            [FAMILY]: { E: { value: error.slice(0, ERROR_MAX_CHARS), timestamp: now * 1000 } },
          },
        },
        { gaxOptions: gax() },
      ),
    );
  }

  /** The last failure recorded for a message body, if any (and within retention). */
  async lastFailure(data: Buffer): Promise<string | undefined> {
    const [rows] = await this.call(() =>
      this.table.getRows({
        keys: [this.failureKey(data)],
        filter: [...column('E'), { column: { cellLimit: 1 } }],
        gaxOptions: gax(),
      }),
    );
    const cell = (rows[0] as unknown as RawRow | undefined)?.data[FAMILY]?.E?.[0];
    if (!cell) return undefined;
    const micros = Number(cell.timestamp ?? 0);
    if (micros > 0 && micros / 1000 + this.retentionMs <= this.now()) return undefined;
    return String(cell.value);
  }

  /** Forgets the failure of a body (once its dead letter is stored). */
  async forgetFailure(data: Buffer): Promise<void> {
    await this.call(() =>
      this.table.mutate({ key: this.failureKey(data), method: 'delete' }, { gaxOptions: gax() }),
    );
  }

  /** Closes the client when this store opened it (a shared one is closed by its owner). */
  async close(): Promise<void> {
    if (this.ownsClient) await this.bigtable.close();
  }

  private async remove(id: string): Promise<void> {
    await this.call(() =>
      this.table.mutate({ key: this.letterKey(id), method: 'delete' }, { gaxOptions: gax() }),
    );
  }

  private toEntry(id: string, row: RawRow): DeadLetterEntry | undefined {
    const family = row.data[FAMILY] ?? {};
    const cell = (name: string) => {
      const value = family[name]?.[0]?.value;
      return value === undefined ? undefined : String(value);
    };
    const time = Number(cell('T'));
    if (!Number.isFinite(time) || cell('T') === undefined) return undefined;
    if (time + this.retentionMs <= this.now()) return undefined;
    let attributes: Record<string, string> = {};
    try {
      attributes = JSON.parse(cell('A') ?? '{}') as Record<string, string>;
    } catch {
      attributes = {};
    }
    const entry: DeadLetterEntry = {
      id,
      reason: cell('W') ?? '',
      data: Buffer.from(cell('B') ?? '', 'base64'),
      attributes,
      deadLetterTime: new Date(time),
    };
    const operation = cell('O');
    if (operation !== undefined) entry.operation = operation;
    return entry;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storageError(err);
    }
  }
}

function checkId(id: string): void {
  if (!DeadLetterIdSchema.safeParse(id).success) {
    throw new LroError(
      Code.INVALID_ARGUMENT,
      `invalid dead-letter ID ${JSON.stringify(id.slice(0, 200))}`,
    );
  }
}
