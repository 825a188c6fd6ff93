/**
 * The dead-letter store on Bigtable, in the operations table, in row ranges of its own (keys.ts),
 * through the instance's one access (access.ts) and the shared paging (paging.ts):
 *
 *   P dl/{id}        one row per dead-lettered message, family `s`:
 *                      T dead-letter time (ms)    W reason           O operation
 *                      B data (base64)            A attributes JSON  L replay lease
 *                      N automatic replay due (ms; see ../../dead-letters/replay.ts)
 *   P dr/{due ms, 15 digits}/{id}
 *                    automatic-replay index (family `s`, column `r`): entries whose last error
 *                    was transient, by the time the sweeper replays them
 *   P df/{sha256}    the last delivery failure of a message body (family `s`, columns E the
 *                    error, G its google.rpc code), which the subscriber records when it fails a
 *                    delivery, so that a message the subscription's policy dead-letters later
 *                    gets "delivery attempts exhausted: <last error>" as its reason and is
 *                    known to be transient or not. The subscriber also keeps the last failures
 *                    in memory: when Bigtable is what failed, the record cannot be written, and
 *                    the dead-letter push (usually to the same instance) still finds it
 *
 * Why this shape:
 * - IDs begin with the reversed dead-letter time (../../dead-letters/record.ts), so a prefix
 *   scan of `dl/` lists newest first, and the dead-letter topic's message ID, so a redelivered
 *   push writes the same row again instead of a second entry.
 * - Cells carry the dead-letter (or failure) time as timestamp: the family's GC rule (max-age =
 *   retention) removes them once retention has passed; reads hide older entries too, GC being lazy.
 * - The replay index sorts by due time, so a sweep reads exactly the entries due by now (one
 *   range read), however many dead letters are kept. Its rows carry the dead-letter time as
 *   timestamp, so they expire with their entry.
 * - Replay takes a lease first: one CheckAndMutateRow that writes `L` only when the entry exists
 *   and holds no lease younger than REPLAY_LEASE_MS, so of two replays at once exactly one
 *   publishes; a replay that crashed after its lease blocks others only until the lease ages.
 */
import { randomUUID } from 'node:crypto';
import { DeadLetterIdSchema } from '../../../sdk/dead-letters.js';
import { defaults } from '../../../sdk/defaults.js';
import { Code, LroError, notFound } from '../../../sdk/errors.js';
import type { DeadLetterEntry } from '../../dead-letters/record.js';
import type { Config } from '../../runtime/config.js';
import { PageTokens } from '../page-token.js';
import { BigtableAccess, type RawRow } from './access.js';
import { Keys, padMs, prefixEnd, STATE } from './keys.js';
import { readPage } from './paging.js';

const FAMILY = STATE;
/** A replay lease older than this no longer blocks another replay of the entry. */
export const REPLAY_LEASE_MS = 60_000;
const ERROR_MAX_CHARS = 2_000;

export interface DeadLetterPage {
  entries: DeadLetterEntry[];
  nextPageToken: string;
}

/** Why a delivery failed: the error's google.rpc code and message. */
export interface DeliveryFailure {
  /** Absent for failures recorded before codes were kept. */
  code?: Code;
  message: string;
}

/** Records and answers the last delivery failure of a message body (used by the subscriber). */
export interface FailureMemory {
  rememberFailure(data: Buffer, error: DeliveryFailure): Promise<void>;
}

/** An entry of the automatic-replay index. */
export interface ReplayDue {
  /** The index row's key. */
  key: string;
  id: string;
  due: Date;
}

/** Failures remembered in memory at most (the newest kept). */
const FAILURES_IN_MEMORY_MAX = 1_000;

const column = (name: string) => [{ family: FAMILY }, { column: name }];

export class DeadLetterStore implements FailureMemory {
  private readonly access: BigtableAccess;
  private readonly keys: Keys;
  private readonly retentionMs: number;
  private readonly tokens: PageTokens;

  /** Whether close() closes the access (it was opened here, not shared). */
  private readonly ownsAccess: boolean;
  /** The last failures of message bodies, by failure key; newest last. */
  private readonly failures = new Map<string, DeliveryFailure & { at: number }>();

  /**
   * `shared`: the instance's access (stores.ts), which its owner closes; without, the store opens
   * its own.
   */
  constructor(
    config: Config,
    private readonly now: () => number = Date.now,
    shared?: BigtableAccess,
  ) {
    this.access = shared ?? new BigtableAccess(config);
    this.ownsAccess = shared === undefined;
    this.keys = new Keys(config.bigtable.rowKeyPrefix);
    this.retentionMs = config.retentionMs;
    this.tokens = new PageTokens(config.pageTokenKey);
  }

  /**
   * Stores an entry (idempotent: the same ID writes the same cells), and its automatic-replay
   * index entry when it has `autoReplayAt`. Throws when not stored.
   */
  async put(entry: DeadLetterEntry): Promise<void> {
    const time = entry.deadLetterTime.getTime();
    const cells: Record<string, string> = {
      T: String(time),
      W: entry.reason,
      B: entry.data.toString('base64'),
      A: JSON.stringify(entry.attributes),
    };
    if (entry.operation !== undefined) cells.O = entry.operation;
    if (entry.autoReplayAt !== undefined) cells.N = String(entry.autoReplayAt.getTime());
    const data: Record<string, { value: string; timestamp: number }> = {};
    for (const [name, value] of Object.entries(cells))
      data[name] = { value, timestamp: time * 1000 };
    const rows = [
      { key: this.keys.deadLetter(entry.id), method: 'insert', data: { [FAMILY]: data } },
    ];
    if (entry.autoReplayAt !== undefined) {
      rows.push({
        key: this.keys.replay(entry.autoReplayAt.getTime(), entry.id),
        method: 'insert',
        data: { [FAMILY]: { r: { value: entry.id, timestamp: time * 1000 } } },
      });
    }
    await this.access.mutate(rows);
  }

  /** Automatic-replay index entries due by `now`, earliest first, `limit` at most. */
  async listReplayDue(now: Date, limit: number): Promise<ReplayDue[]> {
    const prefix = this.keys.replays();
    const end = `${prefix}${padMs(now.getTime() + 1)}`;
    const rows = await this.access.read({
      ranges: [
        { start: { value: prefix, inclusive: true }, end: { value: end, inclusive: false } },
      ],
      limit,
      filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
    });
    const due: ReplayDue[] = [];
    for (const row of rows) {
      const rest = row.id.slice(prefix.length);
      const id = rest.slice(16);
      if (rest[15] !== '/' || !DeadLetterIdSchema.safeParse(id).success) continue;
      const time = row.data[FAMILY]?.r?.[0]?.timestamp;
      // Past retention: its entry is gone too (GC is lazy); the row only needs removing.
      const expired = time !== undefined && Number(time) / 1000 + this.retentionMs <= this.now();
      due.push({ key: row.id, id, due: new Date(expired ? 0 : Number(rest.slice(0, 15))) });
    }
    return due;
  }

  /** Removes an automatic-replay index entry (idempotent). */
  async unscheduleReplay(key: string): Promise<void> {
    await this.access.mutate({ key, method: 'delete' });
  }

  /** The entry; NOT_FOUND when absent or past retention, INVALID_ARGUMENT for a malformed ID. */
  async get(id: string): Promise<DeadLetterEntry> {
    checkId(id);
    const [row] = await this.access.read({
      keys: [this.keys.deadLetter(id)],
      filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
    });
    const entry = row && this.toEntry(id, row);
    if (!entry) throw notFound(`dead letter deadLetters/${id} not found`);
    return entry;
  }

  /** Newest first; page tokens as for operations (signed, scoped, dated). */
  async list(options: { pageSize: number; pageToken: string }): Promise<DeadLetterPage> {
    const prefix = this.keys.deadLetters();
    const page = await readPage<DeadLetterEntry>({
      pageSize: options.pageSize,
      pageToken: options.pageToken,
      tokens: this.tokens,
      scope: 'deadLetters',
      batchSize: Math.min(options.pageSize + 1, 1000),
      read: async (after, limit) => {
        const rows = await this.access.read({
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
          filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
        });
        return rows.map((row) => {
          const id = row.id.slice(prefix.length);
          return { position: id, entry: this.toEntry(id, row) };
        });
      },
    });
    return { entries: page.entries, nextPageToken: page.nextPageToken };
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
    const claimed = await this.access.checkAndMutate(
      this.keys.deadLetter(id),
      [{ condition: { test: youngLease, pass: [{ all: false }], fail: column('T') } }],
      {
        onMatch: [
          {
            method: 'insert',
            data: { [FAMILY]: { L: { value: randomUUID(), timestamp: now * 1000 } } },
          },
        ],
        onNoMatch: [],
      },
    );
    if (!claimed) {
      await this.get(id); // NOT_FOUND if it went meanwhile
      throw new LroError(Code.ABORTED, `deadLetters/${id} is being replayed; try again later`);
    }
    try {
      await publish(entry);
    } catch (err) {
      await this.access
        .mutate({ key: this.keys.deadLetter(id), method: 'delete', data: [`${FAMILY}:L`] })
        .catch(() => undefined);
      throw err;
    }
    await this.remove(id);
  }

  /**
   * Records why a delivery of `data` failed: in memory at once, then in Bigtable within
   * `defaults.failureRecordTimeoutMs` (Bigtable is often what failed: the delivery must not wait
   * for it again). Rejects when the Bigtable record failed; the memory holds it anyway.
   */
  async rememberFailure(data: Buffer, error: DeliveryFailure): Promise<void> {
    const key = this.keys.failure(data);
    const now = this.now();
    const message = error.message.slice(0, ERROR_MAX_CHARS);
    this.failures.delete(key);
    this.failures.set(key, {
      message,
      ...(error.code === undefined ? {} : { code: error.code }),
      at: now,
    });
    if (this.failures.size > FAILURES_IN_MEMORY_MAX) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
    const cells: Record<string, { value: string; timestamp: number }> = {
      E: { value: message, timestamp: now * 1000 },
    };
    if (error.code !== undefined) cells.G = { value: String(error.code), timestamp: now * 1000 };
    await this.access.mutate(
      { key, method: 'insert', data: { [FAMILY]: cells } },
      { timeoutMs: defaults.failureRecordTimeoutMs },
    );
  }

  /**
   * The last failure of a message body, if any (and within retention): the one this instance
   * remembers, else the one recorded in Bigtable.
   */
  async lastFailure(data: Buffer): Promise<DeliveryFailure | undefined> {
    const key = this.keys.failure(data);
    const remembered = this.failures.get(key);
    if (remembered && remembered.at + this.retentionMs > this.now()) {
      const { at: _at, ...failure } = remembered;
      return failure;
    }
    const [row] = await this.access.read({
      keys: [key],
      filter: [{ family: FAMILY }, { column: { cellLimit: 1 } }],
    });
    const cells = row?.data[FAMILY];
    const cell = cells?.E?.[0];
    if (!cell) return undefined;
    const micros = Number(cell.timestamp ?? 0);
    if (micros > 0 && micros / 1000 + this.retentionMs <= this.now()) return undefined;
    const code = Number(cells?.G?.[0]?.value);
    return Number.isInteger(code) && Code[code] !== undefined
      ? { code: code as Code, message: String(cell.value) }
      : { message: String(cell.value) };
  }

  /** Forgets the failure of a body (once its dead letter is stored). */
  async forgetFailure(data: Buffer): Promise<void> {
    const key = this.keys.failure(data);
    this.failures.delete(key);
    await this.access.mutate({ key, method: 'delete' });
  }

  /** Closes the access when this store opened it (a shared one is closed by its owner). */
  async close(): Promise<void> {
    if (this.ownsAccess) await this.access.close();
  }

  private async remove(id: string): Promise<void> {
    await this.access.mutate({ key: this.keys.deadLetter(id), method: 'delete' });
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
    const replayAt = Number(cell('N'));
    if (cell('N') !== undefined && Number.isFinite(replayAt))
      entry.autoReplayAt = new Date(replayAt);
    return entry;
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
