/**
 * The operator views' wire types as plain TypeScript, without zod, for the client package:
 * an operation's times and its event history. Their source of truth is the zod schemas of
 * operation-times.ts and service/event-history.ts (the API validates its replies against them in
 * tests).
 */

/** When an operation was created, changed, ended; its limits and signs of life (RFC 3339). */
export interface OperationTimes {
  name: string;
  createTime: string;
  updateTime: string;
  endTime?: string;
  expireTime?: string;
  deadline?: string;
  /** A Duration such as "60s". */
  heartbeatTimeout?: string;
  lastHeartbeatTime?: string;
  cancelRequestTime?: string;
  parent?: string;
}

export type HistoryOutcome =
  | 'APPLIED'
  | 'CLOCK_CORRECTED'
  | 'DUPLICATE'
  | 'STALE'
  | 'IGNORED'
  | 'HEARTBEAT';

/** One event the subscriber handled, or a run of consecutive heartbeats (`count`). */
export interface HistoryItem {
  eventId: string;
  type: 'metadata' | 'succeeded' | 'failed' | 'heartbeat';
  outcome: HistoryOutcome;
  emitTime?: string;
  publishTime?: string;
  applyTime: string;
  countedTime?: string;
  messageId?: string;
  count?: number;
  firstApplyTime?: string;
}

export interface OperationHistory {
  name: string;
  /** Newest first. */
  events: HistoryItem[];
}

export type OrderByValue = 'create_time desc' | 'create_time asc';
