/**
 * The key registry: every row-key range of the operations table, its column families, and the
 * one place that builds keys. The other files of this folder each own one range's protocol.
 *
 * Row layout (P = the configured row-key prefix, so that several services can share a table):
 *
 *   P o/{id}              one row per operation, family `s`, one cell per column (columns.ts):
 *                           C create time (ms)        U update time (ms)
 *                           P parent name             Q request ID of the create
 *                           M metadata (Any JSON)     K metadata order key: "{emit ms, 15 digits}/{eventId}"
 *                           X cancel request time     D done time (present iff done)
 *                           R result: {"response":…} or {"error":…}
 *                           L deadline (ms)           T heartbeat timeout (ms)
 *                           H last heartbeat or progress: "{ms, 15 digits}"
 *                           Z{token} a deletion in progress (parent-delete.ts)
 *                           e{hash} the event with this ID took effect (operation-rows.ts)
 *                           Y{hash} after a delete: the operation that request ID created is
 *                                   gone (a tombstone; the row has no C; request-ids.ts)
 *                         operation-rows.ts: create-if-absent, terminal write-once, newest
 *                         metadata, heartbeat, cancel, expire
 *   P o/{id}, family `h`  the operation's event history (history.ts, ../event-history.ts)
 *   P c/{parentId}/{id}   children index, family `i`, column `c` = the child's create time
 *                         (children.ts; the parent-delete protocol: parent-delete.ts)
 *   P r/{requestId}       request-ID index, family `i`, column `o` = the operation ID
 *                         (request-ids.ts)
 *   P d/{due ms, 15 digits}/{id}
 *                         due-time index of operations with a deadline or heartbeat timeout,
 *                         family `i`, column `d`; checked lazily by the sweeper (due-index.ts)
 *   P ta/…, td/…, ka/…, kd/…
 *                         time-ordered index for orderBy=create_time (time-index.ts)
 *   P dl/{id}, dr/…, df/… dead letters, their automatic-replay index and the last delivery
 *                         failures, family `s` (dead-letters.ts)
 *
 * Why ranges: each protocol reads its own range with one prefix or range scan, never a table
 * scan. IDs cannot contain "/", so one parent's prefix never covers another's.
 *
 * Retention: every family has the GC rule max-age = retention. Cells of running operations carry
 * a far-future timestamp (`RUNNING_TIMESTAMP_MICROS`), so GC never touches them; the terminal
 * write rewrites the whole row with the completion time as timestamp, so GC removes finished
 * operations once retention has passed. GC is lazy, so reads also hide operations whose
 * D + retention is past.
 */
import { createHash } from 'node:crypto';

/** Family of operation cells (and dead letters). */
export const STATE = 's';
/** Family of the index rows (children, request IDs, due times, time order). */
export const INDEX = 'i';
/** Timestamp (µs) of the cells of running operations: 2200-01-01, out of GC's reach. */
export const RUNNING_TIMESTAMP_MICROS = Date.UTC(2200, 0, 1) * 1000;

/** Milliseconds as 15 digits, so that values and row keys sort by time. */
export function padMs(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

/** The first key after every key that starts with `prefix`. */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** The row keys of one table (under one row-key prefix). */
export class Keys {
  constructor(readonly prefix: string) {}

  /** Operation rows. */
  readonly operations = () => `${this.prefix}o/`;
  operation(id: string) {
    return `${this.prefix}o/${id}`;
  }

  /** The children index of one parent. */
  children(parentId: string) {
    return `${this.prefix}c/${parentId}/`;
  }
  child(parentId: string, id: string) {
    return `${this.prefix}c/${parentId}/${id}`;
  }

  request(requestId: string) {
    return `${this.prefix}r/${requestId}`;
  }

  /** The due-time index. */
  readonly dues = () => `${this.prefix}d/`;
  due(dueMs: number, id: string) {
    return `${this.prefix}d/${padMs(dueMs)}/${id}`;
  }

  /** Dead letters, newest first (their IDs begin with the reversed time). */
  readonly deadLetters = () => `${this.prefix}dl/`;
  deadLetter(id: string) {
    return `${this.prefix}dl/${id}`;
  }
  /** The automatic-replay index of dead letters. */
  readonly replays = () => `${this.prefix}dr/`;
  replay(dueMs: number, id: string) {
    return `${this.prefix}dr/${padMs(dueMs)}/${id}`;
  }
  /** The last delivery failure of a message body. */
  failure(data: Buffer) {
    return `${this.prefix}df/${createHash('sha256').update(data).digest('base64url')}`;
  }
}
