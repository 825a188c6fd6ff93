/**
 * The one way to Bigtable: the only module that imports @google-cloud/bigtable.
 *
 * An instance opens one `BigtableAccess` (one client, one channel pool) and every store of the
 * instance, operations and dead letters, goes through it (`openStores`, stores.ts); closing it
 * closes the client once (the `close` shutdown hook of each function).
 *
 * Every data call goes through `read`, `mutate` or `checkAndMutate` here, which
 * - pass the per-call deadline (`defaults.bigtableCallTimeoutMs`, or a shorter one the caller
 *   gives), so that a stalled Bigtable fails the call (and the delivery or request) instead of
 *   holding it for the client library's own limits (a minute and more for a mutate);
 * - map failures to LroErrors (`storageError`): transient ones UNAVAILABLE, others INTERNAL.
 * test/service/bigtable-access.test.ts fails when code elsewhere in shared/ calls a table directly.
 *
 * The table's administration (create with its families and GC rules, delete, read the rules)
 * is here too, each with a client of its own that it closes: for the local stack and tests.
 */
import { Bigtable, type Table } from '@google-cloud/bigtable';
import { defaults } from '../../../sdk/defaults.js';
import { Code, grpcCode, LroError } from '../../../sdk/errors.js';
import { skipMetadataServerProbe } from '../../../sdk/messaging.js';
import type { Config } from '../../runtime/config.js';
import { HISTORY_FAMILY, HISTORY_VERSIONS } from '../event-history.js';
import { INDEX, STATE } from './keys.js';

/** A row as the client returns it: cells by family and column, newest version first. */
export interface RawRow {
  id: string;
  data: Record<string, Record<string, { value: string; timestamp?: string | number }[]>>;
}

/** A row range of a read: start and end keys, each inclusive or not. */
export interface KeyRange {
  start: { value: string; inclusive: boolean };
  end: { value: string; inclusive: boolean };
}

/** What a read asks for: rows by key or by range, at most `limit`, narrowed by `filter`. */
export interface ReadRequest {
  keys?: string[];
  ranges?: KeyRange[];
  limit?: number;
  filter?: unknown;
}

/** One row's mutation (insert cells, delete cells or the row), as the client takes it. */
export interface RowMutation {
  key: string;
  method: string;
  data?: unknown;
}

/** A mutation of a CheckAndMutateRow (on its one row). */
export interface CellMutation {
  method: string;
  data?: unknown;
}

/** Per-call options: a deadline other than the default (a shorter one). */
export interface CallOptions {
  timeoutMs?: number;
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

/** A Bigtable client and the operations table through it. */
export interface TableConnection {
  bigtable: Bigtable;
  table: Table;
}

/**
 * Bigtable's client and table for a config (emulator-aware); the caller closes the client. For
 * the table's administration below and for tests; the service goes through `BigtableAccess`.
 */
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

/**
 * Fresh options each call: the client mutates them (it appends its metrics interceptor).
 */
const gaxOptions = (options: CallOptions = {}) => ({
  timeout: options.timeoutMs ?? defaults.bigtableCallTimeoutMs,
});

/** The operations table of one instance, through one client, every call with its deadline. */
export class BigtableAccess {
  // Private at run time too: nothing outside reaches the client or the table.
  readonly #bigtable: Bigtable;
  readonly #table: Table;

  constructor(config: Pick<Config, 'projectId' | 'bigtable'>) {
    ({ bigtable: this.#bigtable, table: this.#table } = openTable(config));
  }

  /** ReadRows: the rows asked for, in key order. */
  async read(request: ReadRequest, options?: CallOptions): Promise<RawRow[]> {
    const [rows] = await this.call(() =>
      this.#table.getRows({ ...request, gaxOptions: gaxOptions(options) }),
    );
    return rows as unknown as RawRow[];
  }

  /** MutateRow (one mutation) or MutateRows (several, each row atomic on its own). */
  async mutate(mutations: RowMutation | RowMutation[], options?: CallOptions): Promise<void> {
    await this.call(() => this.#table.mutate(mutations, { gaxOptions: gaxOptions(options) }));
  }

  /**
   * CheckAndMutateRow on the row `key`: `onMatch` when `predicate` yields any cell, else
   * `onNoMatch`. Resolves whether the predicate matched.
   */
  async checkAndMutate(
    key: string,
    predicate: unknown,
    mutations: { onMatch: CellMutation[]; onNoMatch: CellMutation[] },
    options?: CallOptions,
  ): Promise<boolean> {
    const [matched] = await this.call(() =>
      this.#table.row(key).filter(predicate, {
        onMatch: mutations.onMatch,
        onNoMatch: mutations.onNoMatch,
        gaxOptions: gaxOptions(options),
      }),
    );
    return matched === true;
  }

  /** Closes the client: every call after fails. */
  async close(): Promise<void> {
    await this.#bigtable.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storageError(err);
    }
  }
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
