/**
 * The operation store: what the rest of the project needs from storage, in the domain's words.
 * `BigtableOperationStore` (bigtable-store.ts) is the implementation; nothing else touches
 * Bigtable.
 */
import type { Any, Operation, OperationNode, Status } from './model.js';

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
}

export interface CreateOperationOptions {
  /** Caller-chosen ID; a random UUID when absent. A taken ID is ALREADY_EXISTS. */
  id?: string;
  /** Parent operation name (`operations/{id}`); it must exist. */
  parent?: string;
  metadata?: Any;
  /** Idempotency key: a retried create with the same key returns the same operation. */
  requestId?: string;
}

export interface PageOptions {
  pageSize: number;
  pageToken: string;
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

/** Outcome of a conditional write: whether this write changed the operation, and its state. */
export interface WriteResult {
  /** The state after this write when applied; the stored state when not. */
  operation: Operation;
  applied: boolean;
}

export type Outcome = { response?: Any } | { error: Status };

export interface CompleteOptions {
  /** Final metadata; when absent the last metadata is kept. */
  metadata?: Any;
}

export interface UpdateMetadataOptions {
  /** When the worker emitted the metadata; the newest wins. */
  emitTime: Date;
  /** Tie-breaker between events of the same emitTime; duplicates of one event apply once. */
  eventId: string;
}

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
  /** Removes the operation and its index entries. NOT_FOUND when absent. */
  delete(name: string): Promise<void>;
  /** Records a cancellation request (once; its time kept). Not applied when already done. */
  requestCancel(name: string): Promise<WriteResult>;
  /** Terminal write-once: of racing completions exactly one has `applied: true`. */
  complete(name: string, outcome: Outcome, options?: CompleteOptions): Promise<WriteResult>;
  /** Metadata update where the newest emitTime wins; never changes a done operation. */
  updateMetadata(name: string, metadata: Any, options: UpdateMetadataOptions): Promise<WriteResult>;
  close(): Promise<void>;
}
