/**
 * Deadlines and heartbeat timeouts (docs/contracts.md, contract 5): the two create fields, their
 * validation, the configured defaults, and the message an operation ends with when one passes.
 *
 * - `deadline` (RFC 3339): the operation must be done by then. It must lie in the future and at
 *   most `defaults.deadlineMaxMs` ahead (a year): further than that is almost certainly a unit
 *   mistake, and an operation is not meant to outlive its retention by years.
 * - `heartbeatTimeout` (a Duration such as "60s"): the operation must show a sign of life (a
 *   heartbeat or progress event, or its creation) at least this often. Between 1 s and
 *   `defaults.heartbeatTimeoutMaxMs` (a week).
 * - Defaults: `LRO_DEADLINE_DEFAULT` (a Duration counted from creation) and
 *   `LRO_HEARTBEAT_TIMEOUT_DEFAULT`; unset means none. A request's own value always wins.
 *
 * The operation's due time is the earlier of its deadline and its last sign of life plus the
 * heartbeat timeout; the sweeper (sweeper.ts) ends operations that are still running then.
 */
import { z } from 'zod';
import { defaults } from './defaults.js';
import { formatDuration, parseDurationMs } from './duration.js';

/** `deadline` of the create body: an RFC 3339 timestamp in the future, parsed to a Date. */
export const DeadlineSchema = z
  .string()
  .max(64)
  .transform((text, ctx) => {
    const parsed = z.iso.datetime({ offset: true }).safeParse(text);
    if (!parsed.success) {
      ctx.addIssue({
        code: 'custom',
        message: `must be an RFC 3339 timestamp such as "2026-12-01T10:00:00Z", got ${JSON.stringify(text)}`,
      });
      return z.NEVER;
    }
    const ms = Date.parse(text);
    const now = Date.now();
    if (ms <= now) {
      ctx.addIssue({
        code: 'custom',
        message: `${text} is in the past; a deadline must be in the future`,
      });
      return z.NEVER;
    }
    if (ms - now > defaults.deadlineMaxMs) {
      ctx.addIssue({
        code: 'custom',
        message: `${text} is more than ${Math.round(defaults.deadlineMaxMs / 86_400_000)} days ahead`,
      });
      return z.NEVER;
    }
    return new Date(ms);
  })
  .describe('RFC 3339 time by which the operation must be done; it then ends DEADLINE_EXCEEDED.');

/** A heartbeat timeout (create body or config), parsed to milliseconds. */
export const HeartbeatTimeoutSchema = z
  .string()
  .max(32)
  .transform((text, ctx) => {
    const problem = timeoutProblem(
      text,
      defaults.heartbeatTimeoutMinMs,
      defaults.heartbeatTimeoutMaxMs,
    );
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return parseDurationMs(text) as number;
  })
  .describe(
    'Duration such as "60s": the operation ends DEADLINE_EXCEEDED when no heartbeat or progress came for this long.',
  );

/** `LRO_DEADLINE_DEFAULT`: a positive Duration counted from creation. */
export const DeadlineDefaultSchema = z
  .string()
  .max(32)
  .transform((text, ctx) => {
    const problem = timeoutProblem(text, 1_000, defaults.deadlineMaxMs);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return parseDurationMs(text) as number;
  });

function timeoutProblem(text: string, minMs: number, maxMs: number): string | undefined {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    return `must be a duration such as "60s", got ${JSON.stringify(text)}`;
  }
  if (ms <= 0) return `must be positive, got ${JSON.stringify(text)}`;
  if (ms < minMs) return `must be at least ${formatDuration(minMs)}, got ${JSON.stringify(text)}`;
  if (ms > maxMs) return `must be at most ${formatDuration(maxMs)}, got ${JSON.stringify(text)}`;
  return undefined;
}

/** The limits of one operation, as the store keeps them. */
export interface OperationLimits {
  deadline?: Date;
  heartbeatTimeoutMs?: number;
}

/** The limits of a new operation: the request's, else the configured defaults. */
export function resolveLimits(
  request: { deadline?: Date | undefined; heartbeatTimeout?: number | undefined },
  configured: {
    deadlineDefaultMs: number | undefined;
    heartbeatTimeoutDefaultMs: number | undefined;
  },
  now: number = Date.now(),
): OperationLimits {
  const limits: OperationLimits = {};
  const deadline =
    request.deadline ??
    (configured.deadlineDefaultMs === undefined
      ? undefined
      : new Date(now + configured.deadlineDefaultMs));
  if (deadline !== undefined) limits.deadline = deadline;
  const heartbeat = request.heartbeatTimeout ?? configured.heartbeatTimeoutDefaultMs;
  if (heartbeat !== undefined) limits.heartbeatTimeoutMs = heartbeat;
  return limits;
}

/** Which limit passed. */
export type Limit = 'deadline' | 'heartbeat';

/** What the store knows of an operation's limits and liveness, in milliseconds since the epoch. */
export interface Liveness {
  createMs: number;
  deadlineMs?: number;
  heartbeatTimeoutMs?: number;
  /** The last heartbeat or progress, when there was one. */
  lastHeartbeatMs?: number;
}

/** When the operation becomes due, and by which limit; undefined when it has no limit. */
export function dueOf(live: Liveness): { dueMs: number; limit: Limit } | undefined {
  const heartbeatDue =
    live.heartbeatTimeoutMs === undefined
      ? undefined
      : (live.lastHeartbeatMs ?? live.createMs) + live.heartbeatTimeoutMs;
  if (live.deadlineMs === undefined) {
    return heartbeatDue === undefined ? undefined : { dueMs: heartbeatDue, limit: 'heartbeat' };
  }
  if (heartbeatDue !== undefined && heartbeatDue < live.deadlineMs) {
    return { dueMs: heartbeatDue, limit: 'heartbeat' };
  }
  return { dueMs: live.deadlineMs, limit: 'deadline' };
}

/** The DEADLINE_EXCEEDED message: which limit passed, and when the last heartbeat was. */
export function deadlineExceededMessage(live: Liveness, limit: Limit): string {
  const last =
    live.lastHeartbeatMs === undefined
      ? `no heartbeat since creation at ${new Date(live.createMs).toISOString()}`
      : `last heartbeat at ${new Date(live.lastHeartbeatMs).toISOString()}`;
  if (limit === 'deadline') {
    return `deadline ${new Date(live.deadlineMs ?? 0).toISOString()} exceeded; ${last}`;
  }
  return `heartbeat timeout of ${formatDuration(live.heartbeatTimeoutMs ?? 0)} exceeded; ${last}`;
}
