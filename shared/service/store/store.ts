/**
 * The operation store: what the rest of the project needs from storage, in the domain's words.
 * `BigtableOperationStore` (bigtable/operation-store.ts) is the implementation; only the modules of
 * bigtable/ touch Bigtable, and only through bigtable/access.ts.
 */
import type { Limit } from '../../sdk/deadlines.js';
import type { Any, Operation, OperationNode, Status } from '../../sdk/model.js';
import type { OrderBy } from '../../sdk/operation-times.js';
import type { HistoryEntry, HistoryRecord } from './event-history.js';

/** An operation as stored, with the bookkeeping that the Operation JSON does not carry. */
export interface OperationRecord {
  operation: Operation;
  createTime: Date;
  updateTime: Date;
  /** Set once the operation is done; retention counts from here. */
  doneTime?: Date;
  /** The parent operation's name, if any. */
  parent?: string;
  /** When cancellation was requested, if it was. */
  cancelRequestTime?: Date;
  /** When the operation must be done, if it has a deadline. */
  deadline?: Date;
  /** The longest time without a sign of life before it is ended, if it has one. */
  heartbeatTimeoutMs?: number;
  /** The last heartbeat or progress event applied while it ran, if any. */
  lastHeartbeatTime?: Date;
}

export interface CreateOperationOptions {
  /** Caller-chosen ID; a random UUID when absent. A taken ID is ALREADY_EXISTS. */
  id?: string;
  /** Parent operation name (`operations/{id}`); it must exist. */
  parent?: string;
  metadata?: Any;
  /**
   * Idempotency key (AIP-155): a retried create with the same key returns the same operation. It
   * names only a successful create: a failed one leaves it free.
   */
  requestId?: string;
  /** When it must be done (docs/contracts.md, contract 5); then the sweeper ends it. */
  deadline?: Date;
  /** Longest time without a heartbeat or progress before the sweeper ends it. */
  heartbeatTimeoutMs?: number;
}

export interface PageOptions {
  pageSize: number;
  pageToken: string;
  /** AIP-132 order; by name (ID) when absent. Served from the time-ordered index. */
  orderBy?: OrderBy;
}

export interface ListOptions extends PageOptions {
  /** AIP-160 subset; see filter.ts. */
  filter: string;
}

export interface Page {
  operations: OperationRecord[];
  /** Empty when there are no more. */
  nextPageToken: string;
}

/**
 * Why an event's write did not apply, when it is not the operation's state (done, newer
 * metadata): `duplicate`, an event with this eventId took effect already; `earlier-operation`, the
 * event was published before the operation was created (it belongs to an earlier operation of the
 * same name).
 */
export type NotAppliedReason = 'duplicate' | 'earlier-operation';

/** Outcome of a conditional write: whether this write changed the operation, and its state. */
export interface WriteResult {
  /** The state after this write when applied; the stored state when not. */
  operation: Operation;
  applied: boolean;
  /** When not applied because of the event's identity. */
  reason?: NotAppliedReason;
}

/**
 * Who an event is: its ID, which takes effect at most once per operation, and when it was
 * published (Pub/Sub's clock, the original time across replays): an operation created after
 * that is another operation of the same name, to which it never applies.
 */
export interface EventIdentity {
  eventId?: string;
  publishTime?: Date;
}

export type Outcome = { response?: Any } | { error: Status };

export interface CompleteOptions extends EventIdentity {
  /** Final metadata; when absent the last metadata is kept. */
  metadata?: Any;
  /** Written to the event history in the same write when it applies (event-history.ts). */
  history?: HistoryEntry;
}

export interface UpdateMetadataOptions extends EventIdentity {
  /** When the worker emitted the metadata; the newest wins. */
  emitTime: Date;
  /** Tie-breaker between events of the same emitTime; one eventId takes effect at most once. */
  eventId: string;
  /** Written to the event history in the same write when it applies (event-history.ts). */
  history?: HistoryEntry;
}

export interface HeartbeatOptions extends EventIdentity {
  /** The time of the sign of life (the service's clock). */
  time: Date;
  /** Written to the event history in the same write when it applies (event-history.ts). */
  history?: HistoryEntry;
}

/** An entry of the due-time index: the operation may be due at `due` (sweeper.ts). */
export interface DueEntry {
  /** Identifies the entry itself, for moving or removing it. */
  key: string;
  operation: string;
  due: Date;
}

/**
 * What `expire` found and did; `reads` counts the rows it read. `ended`: this call ended the
 * operation DEADLINE_EXCEEDED; `done`: it was done already (ended by anyone); `running`: not
 * due (renewed), or without any limit when `due` is absent; `missing`: no such operation.
 */
export type ExpireResult = { reads: number } & (
  | { state: 'ended'; operation: Operation; limit: Limit }
  | { state: 'done'; operation: Operation }
  | { state: 'running'; due?: Date }
  | { state: 'missing' }
);

/** Outcome of a heartbeat: applied, or why not (the stored state). */
export type HeartbeatResult =
  | { applied: true }
  | { applied: false; operation: Operation; reason?: NotAppliedReason };

export interface OperationStore {
  create(options?: CreateOperationOptions): Promise<OperationRecord>;
  /** NOT_FOUND at once when absent or expired. */
  get(name: string): Promise<OperationRecord>;
  list(options: ListOptions): Promise<Page>;
  /** Immediate children of an operation, from the children index. */
  listChildren(parent: string, options: PageOptions): Promise<Page>;
  /** The tree below an operation, to `maxDepth` levels of children. */
  traverse(name: string, options: { maxDepth: number }): Promise<OperationNode>;
  /** The parent's name, or undefined for a root operation. NOT_FOUND when absent. */
  getParent(name: string): Promise<string | undefined>;
  /**
   * Removes the operation and its index entries. NOT_FOUND when absent; FAILED_PRECONDITION while
   * it has children (a child create racing it either lands first, or fails). A create retried with
   * the operation's request ID meanwhile either answers with the deleted operation or creates a
   * new one that the request ID then names; it never brings the deleted one back.
   */
  delete(name: string): Promise<void>;
  /** Records a cancellation request (once; its time kept). Not applied when already done. */
  requestCancel(name: string): Promise<WriteResult>;
  /**
   * Terminal write-once: of racing completions exactly one has `applied: true`. Not applied for
   * an eventId that took effect already, or an event published before the operation's creation.
   */
  complete(name: string, outcome: Outcome, options?: CompleteOptions): Promise<WriteResult>;
  /**
   * Metadata update where the newest emitTime wins; never changes a done operation. Not applied
   * for an eventId that took effect already, or an event published before the creation.
   */
  updateMetadata(name: string, metadata: Any, options: UpdateMetadataOptions): Promise<WriteResult>;
  /**
   * Renews a running operation's heartbeat (its last sign of life) to `time`: one conditional
   * write; the stored state is read only when it did not apply. NOT_FOUND when absent. Not applied
   * for an eventId that took effect already (heartbeats do not record theirs), or one published
   * before the operation's creation.
   */
  heartbeat(name: string, options: HeartbeatOptions): Promise<HeartbeatResult>;
  /**
   * Adds an entry to an existing operation's event history (events that changed nothing). With
   * `duplicateIfSeen`, the entry's outcome becomes DUPLICATE when the history already holds an
   * event of its eventId (checked by the same conditional write).
   */
  recordHistory(
    name: string,
    entry: HistoryEntry,
    options?: { duplicateIfSeen?: boolean },
  ): Promise<void>;
  /** The operation's event history, newest first, heartbeat runs collapsed. NOT_FOUND when absent. */
  history(name: string): Promise<HistoryRecord>;
  /** Due-index entries due at or before `now`, earliest first (at most `limit`). */
  listDue(now: Date, limit: number): Promise<DueEntry[]>;
  /**
   * Ends the operation with DEADLINE_EXCEEDED if, at `now`, it is running past its deadline or
   * heartbeat timeout: terminal-once, and not applied if a heartbeat renewed it meanwhile.
   */
  expire(name: string, now: Date): Promise<ExpireResult>;
  /** Moves a due-index entry to `due`, or removes it when `due` is undefined. */
  reschedule(entry: DueEntry, due: Date | undefined): Promise<void>;
  close(): Promise<void>;
}
