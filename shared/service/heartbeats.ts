/**
 * Heartbeats in the subscriber (public contract 5): a `heartbeat` event renews its running
 * operation's last sign of life, at the time the subscriber applies it (the service's clock, not
 * the worker's). It costs one conditional write of one cell and no notification, since the
 * Operation JSON does not change; the stored state is read only when the write did not apply
 * (a done or unknown operation, or a newer heartbeat already stored). An unknown operation fails
 * the delivery like any other event (it may be created a moment later). Like every event, a
 * heartbeat whose eventId took effect already, or one published before its operation was
 * created, changes nothing; its own eventId is not recorded (store.ts).
 */
import type { HeartbeatEvent } from '../sdk/events.js';
import type { OperationStore } from './store.js';
import type { HandleResult } from './subscriber.js';

export async function applyHeartbeat(
  event: HeartbeatEvent,
  store: OperationStore,
  publishTime?: Date,
  now: () => number = Date.now,
): Promise<HandleResult> {
  const result = await store.heartbeat(event.operation, {
    time: new Date(now()),
    eventId: event.eventId,
    ...(publishTime === undefined ? {} : { publishTime }),
  });
  if (result.applied) return { outcome: 'renewed' };
  return {
    outcome: 'ignored',
    reason: result.reason ?? (result.operation.done ? 'done' : 'stale'),
  };
}
