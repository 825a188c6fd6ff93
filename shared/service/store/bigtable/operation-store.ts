/**
 * The operation store on Bigtable: `BigtableOperationStore` implements the `OperationStore`
 * interface (../store.ts) by delegating to one module per protocol of this folder:
 *
 *   keys.ts           the key registry: every row-key range and the table's layout
 *   columns.ts        an operation row's columns by name (cells ⇄ record), reads of rows
 *   operation-rows.ts create-if-absent, terminal write-once, newest metadata, heartbeat,
 *                     cancel, expire (one CheckAndMutateRow each)
 *   children.ts       the children index and the tree below an operation
 *   request-ids.ts    request IDs (AIP-155)
 *   due-index.ts      the sweeper's due index
 *   parent-delete.ts  deletes, refused while children exist, race-free with child creates
 *   time-index.ts     the create-time order of lists
 *   lists.ts          the list of operations and of one's children, by ID or create time
 *   history.ts        the event history's cells
 *   paging.ts         page size, byte budget and cursor of every list
 *   access.ts         the one Bigtable client of an instance and the wrapper of every call
 *   dead-letters.ts   the dead-letter store, in ranges of its own of the same table
 *   stores.ts         both stores of an instance on one access (`openStores`)
 *
 * What is left here is the order of a create's writes, which spans the protocols: the due
 * entry, the time-index entries and the child's entry are written before the row (an entry
 * without its operation is skipped and removed; an operation without its entries would be
 * missed), and the request ID is bound before all of them and released when the create fails
 * for good.
 */
import { dueOf } from '../../../sdk/deadlines.js';
import { defaults } from '../../../sdk/defaults.js';
import { invalidArgument, notFound } from '../../../sdk/errors.js';
import {
  type Any,
  AnySchema,
  newOperationId,
  OperationIdSchema,
  type OperationNode,
  operationIdOf,
} from '../../../sdk/model.js';
import type { Config } from '../../runtime/config.js';
import type { HistoryEntry, HistoryRecord } from '../event-history.js';
import { PageTokens } from '../page-token.js';
import type {
  CompleteOptions,
  CreateOperationOptions,
  DueEntry,
  ExpireResult,
  HeartbeatOptions,
  HeartbeatResult,
  ListOptions,
  OperationRecord,
  OperationStore,
  Outcome,
  Page,
  PageOptions,
  UpdateMetadataOptions,
  WriteResult,
} from '../store.js';
import { BigtableAccess } from './access.js';
import { addChild, traverse } from './children.js';
import { createCells, find, livenessOf, type TableContext } from './columns.js';
import * as due from './due-index.js';
import { readHistory, recordHistory } from './history.js';
import { Keys, RUNNING_TIMESTAMP_MICROS } from './keys.js';
import { type ListContext, listChildren, listOperations } from './lists.js';
import * as rows from './operation-rows.js';
import { PAGE_ENVELOPE_BYTES } from './paging.js';
import { checkParentOpen, deleteOperation } from './parent-delete.js';
import { claimRequestId, isDefinitive, releaseRequestId } from './request-ids.js';
import { writeTimeIndex } from './time-index.js';

/** The table's administration, for the local stack, benchmarks and tests (access.ts). */
export { deleteTable, ensureTable, familyGcRules } from './access.js';
export { RUNNING_TIMESTAMP_MICROS } from './keys.js';

/** An operation store with a client of its own (tests, tools); instances use `openStores`. */
export function createStore(config: Config): BigtableOperationStore {
  return new BigtableOperationStore(config);
}

export class BigtableOperationStore implements OperationStore {
  private readonly table: TableContext;
  private readonly lists: ListContext;
  /** Whether close() closes the access (it was opened here, not shared). */
  private readonly ownsAccess: boolean;

  /** `access`: the instance's shared one (its owner closes it); without, the store opens its own. */
  constructor(config: Config, now: () => number = Date.now, access?: BigtableAccess) {
    this.ownsAccess = access === undefined;
    this.table = {
      access: access ?? new BigtableAccess(config),
      keys: new Keys(config.bigtable.rowKeyPrefix),
      retentionMs: config.retentionMs,
      now,
    };
    this.lists = {
      table: this.table,
      tokens: new PageTokens(config.pageTokenKey),
      pageMaxBytes: config.responseMaxBytes - PAGE_ENVELOPE_BYTES,
    };
  }

  /** The access this store goes through, for other stores of the same table to share. */
  get connection(): BigtableAccess {
    return this.table.access;
  }

  async create(options: CreateOperationOptions = {}): Promise<OperationRecord> {
    if (options.id !== undefined && !OperationIdSchema.safeParse(options.id).success) {
      throw invalidArgument(`invalid operation ID ${JSON.stringify(options.id)}`);
    }
    if (options.metadata !== undefined) AnySchema.parse(options.metadata);
    let parentId: string | undefined;
    if (options.parent !== undefined) {
      parentId = operationIdOf(options.parent);
      if (!(await find(this.table, parentId))) {
        throw notFound(`parent operation ${options.parent} not found`);
      }
    }
    let id = options.id ?? newOperationId();
    const now = this.table.now();
    let claimed = false;
    if (options.requestId !== undefined) {
      ({ id, claimed } = await claimRequestId(this.table, options.requestId, id, now));
    }
    try {
      return await this.insertOperation(id, now, parentId, options, !claimed);
    } catch (err) {
      // The request did not succeed: its ID must not stay bound to this operation ID (AIP-155).
      if (claimed && options.requestId !== undefined && isDefinitive(err)) {
        await releaseRequestId(this.table, options.requestId, id).catch(() => undefined);
      }
      throw err;
    }
  }

  private async insertOperation(
    id: string,
    now: number,
    parentId: string | undefined,
    options: CreateOperationOptions,
    retried: boolean,
  ): Promise<OperationRecord> {
    const cells = createCells(now, options);
    const dueAt = dueOf(livenessOf(cells));
    if (dueAt !== undefined) await due.addDue(this.table, dueAt.dueMs, id);
    await writeTimeIndex(this.table, id, now, parentId, RUNNING_TIMESTAMP_MICROS);
    if (parentId !== undefined) {
      await addChild(this.table, parentId, id, now);
      await checkParentOpen(this.table, parentId, id);
    }
    return rows.writeIfAbsent(this.table, id, cells, {
      ...(parentId === undefined ? {} : { parentId }),
      ...(options.parent === undefined ? {} : { parent: options.parent }),
      ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
      retried,
    });
  }

  async get(name: string): Promise<OperationRecord> {
    const record = await find(this.table, operationIdOf(name));
    if (!record) throw notFound(`operation ${name} not found`);
    return record;
  }

  async getParent(name: string): Promise<string | undefined> {
    return (await this.get(name)).parent;
  }

  list(options: ListOptions): Promise<Page> {
    return listOperations(this.lists, options);
  }

  listChildren(parent: string, options: PageOptions): Promise<Page> {
    return listChildren(this.lists, parent, options);
  }

  async traverse(name: string, options: { maxDepth: number }): Promise<OperationNode> {
    await this.get(name);
    return traverse(name, options.maxDepth, defaults.traverseNodesMax, (parent, pageToken) =>
      this.listChildren(parent, { pageSize: 1000, pageToken }),
    );
  }

  delete(name: string): Promise<void> {
    return deleteOperation(this.table, name);
  }

  async requestCancel(name: string): Promise<WriteResult> {
    const applied = await rows.requestCancel(this.table, name);
    return { operation: (await this.get(name)).operation, applied };
  }

  complete(name: string, outcome: Outcome, options: CompleteOptions = {}): Promise<WriteResult> {
    return rows.complete(this.table, name, outcome, options);
  }

  updateMetadata(
    name: string,
    metadata: Any,
    options: UpdateMetadataOptions,
  ): Promise<WriteResult> {
    return rows.updateMetadata(this.table, name, metadata, options);
  }

  heartbeat(name: string, options: HeartbeatOptions): Promise<HeartbeatResult> {
    return rows.heartbeat(this.table, name, options);
  }

  recordHistory(
    name: string,
    entry: HistoryEntry,
    options: { duplicateIfSeen?: boolean } = {},
  ): Promise<void> {
    return recordHistory(this.table, name, entry, options);
  }

  history(name: string): Promise<HistoryRecord> {
    return readHistory(this.table, name);
  }

  listDue(now: Date, limit: number): Promise<DueEntry[]> {
    return due.listDue(this.table, now, limit);
  }

  expire(name: string, now: Date): Promise<ExpireResult> {
    return rows.expire(this.table, name, now);
  }

  reschedule(entry: DueEntry, at: Date | undefined): Promise<void> {
    return due.reschedule(this.table, entry, at);
  }

  /** Closes the access when this store opened it (a shared one is closed by its owner). */
  async close(): Promise<void> {
    if (this.ownsAccess) await this.table.access.close();
  }

  /**
   * Makes the first calls of the read and conditional-write paths (credentials, the gapic client,
   * the channel, each request's encoder) on a row no operation uses, and writes nothing
   * (operation-rows.ts's warmUp). For an instance's start (shared/service/runtime/warm-up.ts);
   * rejects as the calls do.
   */
  warmUp(timeoutMs: number): Promise<void> {
    return rows.warmUp(this.table, `${this.table.keys.prefix}~warm-up`, timeoutMs);
  }
}
