/**
 * Replays: publishing a dead letter's event to the events topic again, by a person (the API's
 * `:replay`) or automatically (the sweeper, for events that failed only for transient reasons).
 *
 * Why automatic replay exists: when Bigtable is unavailable for longer than the events
 * subscription's delivery attempts last (5 locally, 10 in the cloud), the subscription's
 * dead-letter policy moves valid events to the dead-letter topic, and their operations would
 * stay running until a person replays them. So:
 *
 * - The subscriber records why each delivery failed (google.rpc code and message), in memory and,
 *   within a short deadline, in Bigtable (store/bigtable/dead-letters.ts). When the policy
 *   dead-letters the message, the dead-letter handler reads that record. The last error is
 *   transient when its code is UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED or RESOURCE_EXHAUSTED, or
 *   when none was recorded (the subscriber records every failure it throws; a record is missing
 *   when Bigtable, where it goes, was down or the instance died). NOT_FOUND (an event for an operation that does not
 *   exist) is not transient: it waits for a person, as before.
 * - Such a dead letter is stored with an automatic-replay time and an index entry. The dead-letter
 *   push is answered only once both are written; while Bigtable is still down the push fails and
 *   Pub/Sub delivers it again with backoff, so nothing is lost.
 * - Each sweep (every minute in the cloud, every 2 s under `npm start`) reads the index entries
 *   due by now and, for each whose operation is still running, replays the entry exactly as the
 *   API does (lease, publish, remove), adding `lroAutoReplays` = n + 1 to the attributes. An entry
 *   whose operation is done or gone is left for a person and leaves the index.
 * - Should the replayed event fail again until the policy dead-letters it once more, the new
 *   dead letter carries the count: the n-th automatic replay waits initial x 2^(n-2) after the
 *   dead-letter time (the first none), capped, and after `deadLetterAutoReplaysMax` replays the
 *   entry waits for a person.
 * - Nothing applies twice: a replay publishes the original bytes, whose eventId the store applies
 *   at most once; a sweeper that crashed between publishing and removing the entry publishes it
 *   again, which changes nothing.
 */
import { defaults } from '../../sdk/defaults.js';
import { Code, LroError, toLroError, unavailable } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import type { DeadLetterStore, DeliveryFailure } from '../store/bigtable/dead-letters.js';
import type { OperationStore } from '../store/store.js';
import {
  AUTO_REPLAYS_ATTRIBUTE,
  autoReplaysOf,
  type DeadLetterEntry,
  originalAttributes,
} from './record.js';

const TRANSIENT_CODES = new Set<Code>([
  Code.UNAVAILABLE,
  Code.DEADLINE_EXCEEDED,
  Code.ABORTED,
  Code.RESOURCE_EXHAUSTED,
]);

/** Whether a delivery's last failure was transient (none recorded counts as transient). */
export function isTransient(failure: DeliveryFailure | undefined): boolean {
  if (failure === undefined) return true;
  return failure.code !== undefined && TRANSIENT_CODES.has(failure.code);
}

/**
 * When a dead letter whose event was replayed `replays` times before is replayed again, or
 * undefined when it was replayed automatically often enough.
 */
export function autoReplayTime(deadLetterTime: Date, replays: number): Date | undefined {
  if (replays >= defaults.deadLetterAutoReplaysMax) return undefined;
  const delay =
    replays === 0
      ? 0
      : Math.min(
          defaults.deadLetterAutoReplayInitialMs * 2 ** (replays - 1),
          defaults.deadLetterAutoReplayMaxMs,
        );
  return new Date(deadLetterTime.getTime() + delay);
}

/**
 * Publishes an entry's original data and attributes (plus `extra`) to the events topic: what a
 * replay sends. FAILED_PRECONDITION when Pub/Sub cannot publish it; UNAVAILABLE when it failed.
 */
export async function publishReplay(
  messaging: Messaging,
  eventsTopic: string,
  entry: DeadLetterEntry,
  extra: Record<string, string> = {},
): Promise<void> {
  const attributes = { ...originalAttributes(entry.attributes), ...extra };
  if (entry.data.length === 0 && Object.keys(attributes).length === 0) {
    throw new LroError(
      Code.FAILED_PRECONDITION,
      `deadLetters/${entry.id} has neither data nor attributes; Pub/Sub cannot publish it (discard it)`,
    );
  }
  try {
    await messaging.publish(eventsTopic, entry.data, { attributes });
  } catch (err) {
    throw unavailable(`events topic unavailable; deadLetters/${entry.id} kept`, err);
  }
}

export interface AutoReplayDeps {
  deadLetters: DeadLetterStore;
  store: OperationStore;
  messaging: Messaging;
  topics: { events: string };
  log?: Logger;
  now?: () => number;
}

/** What one pass of automatic replays did. */
export interface AutoReplayReport {
  /** Dead letters published to the events topic again (and removed). */
  replayed: number;
  /** Index entries dropped: their entry is gone, or their operation is done or missing. */
  dropped: number;
  /** Index entries that failed (left for the next sweep). */
  failed: number;
}

/** Replays every dead letter due for an automatic replay by now (one batch). */
export async function replayDueDeadLetters(deps: AutoReplayDeps): Promise<AutoReplayReport> {
  const log = deps.log ?? defaultLog;
  const now = deps.now ?? Date.now;
  const report: AutoReplayReport = { replayed: 0, dropped: 0, failed: 0 };
  const due = await deps.deadLetters.listReplayDue(
    new Date(now()),
    defaults.deadLetterAutoReplayBatchSize,
  );
  const results = await Promise.allSettled(
    due.map(async ({ key, id }) => {
      const outcome = await replayOne(id, deps, log);
      await deps.deadLetters.unscheduleReplay(key);
      report[outcome]++;
    }),
  );
  for (const [i, result] of results.entries()) {
    if (result.status === 'fulfilled') continue;
    report.failed++;
    log.warn('automatic replay of a dead letter failed; the next sweep retries', {
      deadLetter: `deadLetters/${due[i]?.id}`,
      error: toLroError(result.reason),
    });
  }
  return report;
}

/** Replays one entry when its operation runs: 'replayed', or 'dropped' when it should not be. */
async function replayOne(
  id: string,
  deps: AutoReplayDeps,
  log: Logger,
): Promise<'replayed' | 'dropped'> {
  const deadLetter = `deadLetters/${id}`;
  let entry: DeadLetterEntry;
  try {
    entry = await deps.deadLetters.get(id);
  } catch (err) {
    // Replayed or discarded by a person, or past retention.
    if (toLroError(err).code === Code.NOT_FOUND) return 'dropped';
    throw err;
  }
  if (entry.operation === undefined) return 'dropped';
  let done: boolean;
  try {
    done = (await deps.store.get(entry.operation)).operation.done;
  } catch (err) {
    if (toLroError(err).code !== Code.NOT_FOUND) throw err;
    log.info('dead letter not replayed automatically: its operation does not exist', {
      deadLetter,
      operation: entry.operation,
    });
    return 'dropped';
  }
  if (done) {
    log.info('dead letter not replayed automatically: its operation has ended', {
      deadLetter,
      operation: entry.operation,
    });
    return 'dropped';
  }
  const replays = autoReplaysOf(entry.attributes) + 1;
  try {
    await deps.deadLetters.replay(id, (kept) =>
      publishReplay(deps.messaging, deps.topics.events, kept, {
        [AUTO_REPLAYS_ATTRIBUTE]: String(replays),
      }),
    );
  } catch (err) {
    // Nothing Pub/Sub can publish: a person decides.
    if (toLroError(err).code === Code.FAILED_PRECONDITION) return 'dropped';
    throw err;
  }
  log.info('dead letter replayed automatically', {
    deadLetter,
    operation: entry.operation,
    autoReplays: replays,
  });
  return 'replayed';
}
