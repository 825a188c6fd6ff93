/**
 * The sweeper (docs/contracts.md, contract 5): ends operations still running past their deadline
 * or heartbeat timeout with DEADLINE_EXCEEDED, and announces them on the notifications topic
 * with type `failed`. Cloud Scheduler calls the `sweeper` function every minute; `npm start`
 * runs a sweep every 2 seconds.
 *
 * The index, and why it is lazy:
 * - Operations with a limit get one row in a due-time index, `d/{due ms, 15 digits}/{id}` under
 *   the row-key prefix (store/bigtable/due-index.ts), written at creation for the earlier of
 *   the deadline and creation + heartbeat timeout. Rows sort by due time, so a sweep reads exactly the entries
 *   due by now (one range read) and never looks at operations that are not due, however many
 *   are running: rows read = due entries + one operation row each.
 * - A heartbeat does not touch the index: it is one conditional write of one cell (`H`, the last
 *   sign of life) in the operation's own row, as is progress (which sets `H` in its existing
 *   write). The entry therefore often lies too early. When the sweeper reaches it, it reads the
 *   operation, recomputes the due time from the row and, when the operation was renewed, moves
 *   the entry to that time (write the new entry, then delete the old). An operation that
 *   heartbeats every 15 s with a 60 s timeout costs the index one move per timeout period at
 *   most, instead of one index rewrite per heartbeat.
 * - Entries are not removed when an operation completes normally (completion stays one write):
 *   the sweeper finds them done when they fall due and removes them then.
 *
 * Why it is safe:
 * - Ending goes through the store's terminal-once write (`expire`): of a sweeper and a worker's
 *   completion, or of several sweepers, exactly one applies. The write also fails if a heartbeat,
 *   progress or cancellation request reached the row since it was read, so an operation renewed
 *   at the last moment is not ended early (it is read again and rescheduled).
 * - An entry is removed only after its operation is done and announced, or moved: a sweeper
 *   that crashes half-way leaves the entry, and the next run finds it again. An operation it
 *   ended but did not announce is announced by that next run (notifications are at-least-once,
 *   waiters treat a repeat like any other). A create that crashed after writing its entry
 *   leaves an entry without operation, removed after `defaults.sweepMissingGraceMs`.
 * - Several sweepers may run at once: each may read the same entries; only one ends each
 *   operation, and a duplicated move or removal of an entry is idempotent.
 *
 * Each sweep also replays the dead letters due for an automatic replay (events that failed only
 * for transient reasons, whose operation still runs: dead-letter-replay.ts), when given the
 * dead-letter store and the events topic.
 */
import { defaults } from '../../sdk/defaults.js';
import { Code } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import { type AnnounceTopics, announce } from '../../sdk/notifications.js';
import { replayDueDeadLetters } from '../dead-letters/replay.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { DueEntry, OperationStore } from '../store/store.js';

export interface SweeperDeps {
  store: OperationStore;
  messaging: Messaging;
  /**
   * Where an ended operation is announced (a wake-up too when `wakeups` is set); `events`: where
   * automatic replays of dead letters go (none without it).
   */
  topics: AnnounceTopics & { events?: string };
  /** Dead letters to replay automatically (none without). */
  deadLetters?: DeadLetterStore;
  log?: Logger;
  now?: () => number;
}

export interface SweepOptions {
  /** Entries read per batch. */
  batchSize?: number;
  /** Stop starting new batches after this long (the next run continues). */
  budgetMs?: number;
}

/** What one sweep did. */
export interface SweepReport {
  /** Operations this sweep ended DEADLINE_EXCEEDED. */
  ended: number;
  /** Entries moved later because their operation had been renewed. */
  rescheduled: number;
  /** Entries removed (operation done, missing or without limits). */
  removed: number;
  /** Operations found ended before but still listed, announced again. */
  reannounced: number;
  /** Index entries read. */
  entriesRead: number;
  /** Bigtable rows read in all: index entries plus operation rows. */
  rowsRead: number;
  /** Entries that failed (left for the next run), automatic replays included. */
  failed: number;
  /** Dead letters replayed automatically (their events failed only for transient reasons). */
  deadLettersReplayed: number;
  durationMs: number;
  /** Whether entries due now may remain (budget spent). */
  more: boolean;
}

/** Runs one sweep: every entry due by now, batch by batch, until none is left or time is up. */
export async function sweep(deps: SweeperDeps, options: SweepOptions = {}): Promise<SweepReport> {
  const log = deps.log ?? defaultLog;
  const now = deps.now ?? Date.now;
  const batchSize = options.batchSize ?? defaults.sweepBatchSize;
  const budgetMs = options.budgetMs ?? defaults.sweepBudgetMs;
  const started = now();
  const report: SweepReport = {
    ended: 0,
    rescheduled: 0,
    removed: 0,
    reannounced: 0,
    entriesRead: 0,
    rowsRead: 0,
    failed: 0,
    deadLettersReplayed: 0,
    durationMs: 0,
    more: false,
  };
  // Entries that failed or stay in this sweep are skipped by its later batches.
  const skip = new Set<string>();
  for (;;) {
    const at = new Date(now());
    const entries = (await deps.store.listDue(at, batchSize + skip.size)).filter(
      (e) => !skip.has(e.key),
    );
    report.entriesRead += entries.length;
    report.rowsRead += entries.length;
    if (entries.length === 0) break;
    const results = await Promise.allSettled(
      entries.map((entry) => settle(entry, at, deps, report, log)),
    );
    for (const [i, result] of results.entries()) {
      const entry = entries[i] as DueEntry;
      if (result.status === 'fulfilled') {
        if (result.value === 'kept') skip.add(entry.key);
        continue;
      }
      skip.add(entry.key);
      report.failed++;
      log.warn('sweep of an operation failed; the next sweep retries', {
        operation: entry.operation,
        error: result.reason,
      });
    }
    if (entries.length < batchSize) break;
    if (now() - started >= budgetMs) {
      report.more = true;
      break;
    }
  }
  if (deps.deadLetters && deps.topics.events !== undefined) {
    const replays = await replayDueDeadLetters({
      deadLetters: deps.deadLetters,
      store: deps.store,
      messaging: deps.messaging,
      topics: { events: deps.topics.events },
      log,
      now,
    });
    report.deadLettersReplayed = replays.replayed;
    report.failed += replays.failed;
  }
  report.durationMs = now() - started;
  return report;
}

/** Handles one due entry: end, reschedule or remove; 'kept' when it stays where it is. */
async function settle(
  entry: DueEntry,
  at: Date,
  deps: SweeperDeps,
  report: SweepReport,
  log: Logger,
): Promise<'settled' | 'kept'> {
  const result = await deps.store.expire(entry.operation, at);
  report.rowsRead += result.reads;
  switch (result.state) {
    case 'ended':
      // Announced before the entry goes: a crash in between leaves the entry for the next run.
      await announce(
        deps.messaging,
        deps.topics,
        { type: 'failed', operation: result.operation },
        log,
      );
      log.info('operation deadline exceeded', {
        operation: entry.operation,
        limit: result.limit,
        reason: result.operation.error?.message,
      });
      report.ended++;
      await deps.store.reschedule(entry, undefined);
      return 'settled';
    case 'done':
      // Ended by the sweeper before (the announcement may have been lost: repeat it), or
      // completed by its worker (announced by the subscriber).
      if (result.operation.error?.code === Code.DEADLINE_EXCEEDED) {
        await announce(
          deps.messaging,
          deps.topics,
          { type: 'failed', operation: result.operation },
          log,
        );
        report.reannounced++;
      }
      await deps.store.reschedule(entry, undefined);
      report.removed++;
      return 'settled';
    case 'running':
      await deps.store.reschedule(entry, result.due);
      if (result.due === undefined) report.removed++;
      else report.rescheduled++;
      return 'settled';
    case 'missing':
      if (at.getTime() - entry.due.getTime() < defaults.sweepMissingGraceMs) return 'kept';
      await deps.store.reschedule(entry, undefined);
      report.removed++;
      return 'settled';
  }
}
