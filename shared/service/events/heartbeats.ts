/**
 * Subscriber heartbeats (docs/contracts.md, contract 5): a `heartbeat` event renews its running
 * operation's last sign of life, at the time the subscriber applies it (the service's clock, not
 * the worker's). It costs one conditional write of one cell and no notification, since the
 * Operation JSON does not change; the stored state is read only when the write did not apply
 * (a done or unknown operation, or a newer heartbeat already stored). An unknown operation fails
 * the delivery like any other event (it may be created a moment later). Like every event, a
 * heartbeat whose eventId took effect already, or one published before its operation was
 * created, changes nothing; its own eventId is not recorded (store.ts).
 */
import type { HeartbeatEvent } from '../../sdk/events.js';
import { historyEntryOf } from '../store/event-history.js';
import type { OperationStore } from '../store/store.js';
import type { HandleResult } from './messages.js';

export async function applyHeartbeat(
  event: HeartbeatEvent,
  store: OperationStore,
  publishTime?: Date,
  now: () => number = Date.now,
  delivery: { publishTime?: string | undefined; messageId?: string } = {},
): Promise<HandleResult> {
  const time = new Date(now());
  // Recorded in the event history by the same write (event-history.ts).
  const history = historyEntryOf(event, 'HEARTBEAT', delivery, time);
  const result = await store.heartbeat(event.operation, {
    time,
    eventId: event.eventId,
    ...(publishTime === undefined ? {} : { publishTime }),
    history,
  });
  if (result.applied) return { outcome: 'renewed' };
  if (result.operation.done) {
    await store
      .recordHistory(event.operation, historyEntryOf(event, 'IGNORED', delivery, time))
      .catch(() => undefined);
  }
  return {
    outcome: 'ignored',
    reason: result.reason ?? (result.operation.done ? 'done' : 'stale'),
  };
}
