/**
 * The event history of an operation: the events the subscriber handled for it, with what each
 * one did, so that an operator can see why an operation is where it is ("stuck at 40 %": its
 * last progress was applied 20 minutes ago, heartbeats kept arriving, then a late duplicate).
 *
 * Storage (bigtable/history.ts writes and reads it): in the operation's own row, family `h`, one
 * cell version per event, its timestamp the time the subscriber handled it:
 *
 *   h:e   every event but heartbeats: a HistoryEntry as JSON
 *   h:b   heartbeats: `{eventId, emitTime, publishTime}` as JSON
 *
 * Why this shape:
 * - The family's GC rule keeps `HISTORY_VERSIONS` versions of each column (and drops cells older
 *   than the retention), so the history is bounded without any trimming write, and heartbeats,
 *   kept in their own column, never push the other events out. Reads ask for at most that many
 *   versions (GC is lazy).
 * - It lives in the operation's row, so deleting the operation deletes it, and it expires with
 *   the operation (its cells are older than the completion, whose retention GC counts from).
 *   Operation reads filter on family `s`, so they never read it.
 * - An applied event's entry is one more mutation in the same conditional write that applies it
 *   (no extra request); an event that changed nothing costs one more conditional write, whose
 *   predicate (an entry of the same eventId stored in `h:e`) makes it DUPLICATE, else STALE or
 *   IGNORED, without a read.
 * - Cell timestamps have millisecond granularity in Bigtable: two events of one operation
 *   handled in the same millisecond keep one entry (the later write) of that column.
 */
import { z } from 'zod';
import { OperationNameSchema } from '../../sdk/model.js';

/** Cell versions kept per column of family `h` (its GC rule): the history's length. */
export const HISTORY_VERSIONS = 200;

export const HISTORY_FAMILY = 'h';
export const HISTORY_EVENTS_COLUMN = 'e';
export const HISTORY_HEARTBEATS_COLUMN = 'b';

export const HistoryOutcomeSchema = z
  .enum(['APPLIED', 'CLOCK_CORRECTED', 'DUPLICATE', 'STALE', 'IGNORED', 'HEARTBEAT'])
  .describe(
    'APPLIED: it changed the operation. CLOCK_CORRECTED: applied, but its emitTime was more than ' +
      '60 s after its publishTime, so it counted at its publishTime. DUPLICATE: an event of this ' +
      'eventId was handled before (a redelivery or a resend); nothing changed. STALE: newer ' +
      'metadata was already stored; nothing changed. IGNORED: the operation had already ended ' +
      '(or the event carried nothing). HEARTBEAT: heartbeats that renewed the running operation.',
  );
export type HistoryOutcome = z.infer<typeof HistoryOutcomeSchema>;

const time = z.string().describe('RFC 3339 time');

/** One entry as stored (and, for events other than heartbeats, as listed). */
export const HistoryEntrySchema = z.strictObject({
  eventId: z.string(),
  type: z.enum(['metadata', 'succeeded', 'failed', 'heartbeat']),
  outcome: HistoryOutcomeSchema,
  emitTime: time.optional().describe("The event's emitTime (the worker's clock)."),
  publishTime: time.optional().describe('When Pub/Sub accepted the message.'),
  applyTime: time.describe('When the subscriber handled it (the last one of a heartbeat run).'),
  countedTime: time
    .optional()
    .describe('CLOCK_CORRECTED: the time the metadata counted at (its publishTime).'),
  messageId: z.string().optional().describe('The Pub/Sub message ID of the delivery.'),
});
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

/** One item of the listed history: an event, or a run of consecutive heartbeats. */
export const HistoryItemSchema = HistoryEntrySchema.extend({
  count: z
    .number()
    .int()
    .optional()
    .describe('HEARTBEAT: how many consecutive heartbeats this run holds.'),
  firstApplyTime: time.optional().describe('HEARTBEAT: when the run began.'),
});
export type HistoryItem = z.infer<typeof HistoryItemSchema>;

export const HistoryRecordSchema = z.strictObject({
  name: OperationNameSchema,
  events: z
    .array(HistoryItemSchema)
    .describe('Newest first; consecutive heartbeats collapsed into one item with a count.'),
});
export type HistoryRecord = z.infer<typeof HistoryRecordSchema>;

/** A stored cell of family `h`: its column, JSON value and timestamp (ms). */
export interface HistoryCell {
  column: string;
  value: string;
  timeMs: number;
}

/** The value of a heartbeat's cell. */
export function heartbeatCellValue(entry: HistoryEntry): string {
  const { eventId, emitTime, publishTime } = entry;
  return JSON.stringify({ eventId, emitTime, publishTime });
}

/**
 * The history from the cells of family `h`: newest first, each run of consecutive heartbeats
 * one item (its count, first and last time, the last one's eventId). Unreadable cells are skipped.
 */
export function historyFromCells(name: string, cells: HistoryCell[]): HistoryRecord {
  const sorted = [...cells].sort((a, b) => b.timeMs - a.timeMs);
  const events: HistoryItem[] = [];
  let run: HistoryItem | undefined;
  for (const cell of sorted) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(cell.value);
    } catch {
      continue;
    }
    if (cell.column === HISTORY_HEARTBEATS_COLUMN) {
      const beat = parsed as { eventId?: unknown; emitTime?: unknown; publishTime?: unknown };
      const at = new Date(cell.timeMs).toISOString();
      if (run) {
        run.count = (run.count ?? 1) + 1;
        run.firstApplyTime = at;
        continue;
      }
      run = {
        eventId: typeof beat.eventId === 'string' ? beat.eventId : '',
        type: 'heartbeat',
        outcome: 'HEARTBEAT',
        applyTime: at,
        firstApplyTime: at,
        count: 1,
      };
      if (typeof beat.emitTime === 'string') run.emitTime = beat.emitTime;
      if (typeof beat.publishTime === 'string') run.publishTime = beat.publishTime;
      events.push(run);
      continue;
    }
    const entry = HistoryEntrySchema.safeParse(parsed);
    if (!entry.success) continue;
    run = undefined;
    events.push(entry.data);
  }
  return { name, events };
}

/** What the subscriber knows of an event when it records it. */
export interface HandledEvent {
  eventId: string;
  type: HistoryEntry['type'];
  emitTime: string;
}

/** The history entry of an event handled now with this outcome. */
export function historyEntryOf(
  event: HandledEvent,
  outcome: HistoryOutcome,
  delivery: { publishTime?: string | undefined; messageId?: string; countedTime?: Date },
  applyTime: Date = new Date(),
): HistoryEntry {
  const entry: HistoryEntry = {
    eventId: event.eventId,
    type: event.type,
    outcome,
    emitTime: event.emitTime,
    applyTime: applyTime.toISOString(),
  };
  if (delivery.publishTime !== undefined) entry.publishTime = delivery.publishTime;
  if (delivery.countedTime !== undefined) entry.countedTime = delivery.countedTime.toISOString();
  if (delivery.messageId !== undefined) entry.messageId = delivery.messageId;
  return entry;
}
