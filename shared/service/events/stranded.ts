/**
 * Terminal events that never apply (docs/contracts.md, contract 5: "an operation always ends"). A
 * `succeeded` or `failed` event that the subscriber has to dead-letter (oversized, not the
 * schema) will never end its operation, and its callers would wait for ever. When such a
 * message's body is a JSON object naming the operation and a terminal type, that operation, if it
 * exists and still runs, is ended with INTERNAL, the message saying why and which dead-lettered
 * message it was, through the same terminal-once write as any completion, and announced as
 * `failed`. Progress and heartbeat events that fail are only dead-lettered: the operation can
 * still end by its next events (or by its limits).
 *
 * Only the body counts: attributes alone (a body that is not JSON, or names no operation) end
 * nothing, and neither does a body whose attributes name another operation or type (which of the
 * two was meant is unknown). Such a message is a publisher's bug or abuse rather than a worker's
 * result that failed to fit, and ending an operation from it would let attributes that nothing
 * validates stand in for an event. The rule obeys event identity like any event: nothing ends an
 * operation created after the message was published, and a body whose eventId took effect
 * already ends nothing.
 */
import { Code, toLroError } from '../../sdk/errors.js';
import { EventIdSchema } from '../../sdk/events.js';
import type { Logger } from '../../sdk/log.js';
import { type Operation, OperationNameSchema, status } from '../../sdk/model.js';
import { announce } from '../../sdk/notifications.js';
import type { EventMessage, SubscriberDeps } from './messages.js';
import { eventPublishTime } from './publish-time.js';

const TERMINAL_TYPES = new Set(['succeeded', 'failed']);

/**
 * The operation and type a message's body claims, when it claims to be a terminal event and its
 * attributes (when present) agree; with its eventId when it has a usable one.
 */
export function terminalClaim(
  message: Pick<EventMessage, 'data' | 'attributes'>,
): { operation: string; type: string; eventId?: string } | undefined {
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(message.data.toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    body = parsed as Record<string, unknown>;
  } catch {
    return undefined; // not JSON: nothing but attributes, which end nothing
  }
  const { type, operation, eventId } = body;
  if (typeof type !== 'string' || !TERMINAL_TYPES.has(type)) return undefined;
  if (typeof operation !== 'string' || !OperationNameSchema.safeParse(operation).success) {
    return undefined;
  }
  const attributes = message.attributes;
  if (attributes.operation !== undefined && attributes.operation !== operation) return undefined;
  if (attributes.type !== undefined && attributes.type !== type) return undefined;
  return typeof eventId === 'string' && EventIdSchema.safeParse(eventId).success
    ? { operation, type, eventId }
    : { operation, type };
}

/**
 * Ends the running operation a dead-lettered terminal event names, with INTERNAL. Resolves with
 * the ended operation, or undefined when there was nothing to end (not terminal, no such
 * operation, already done). Transient failures reject, so that the delivery is retried.
 */
export async function endStrandedOperation(
  message: EventMessage,
  reason: string,
  deps: SubscriberDeps,
  log: Logger,
): Promise<Operation | undefined> {
  const claim = terminalClaim(message);
  if (!claim) return undefined;
  const error = status(
    Code.INTERNAL,
    `the ${claim.type} event of this operation could not be applied: ${reason.slice(0, 4096)} ` +
      `(dead-lettered message ${message.messageId})`,
  );
  const publishTime = eventPublishTime(message);
  let result: Awaited<ReturnType<SubscriberDeps['store']['complete']>>;
  try {
    result = await deps.store.complete(
      claim.operation,
      { error },
      {
        ...(claim.eventId === undefined ? {} : { eventId: claim.eventId }),
        ...(publishTime === undefined ? {} : { publishTime }),
      },
    );
  } catch (err) {
    if (toLroError(err).code === Code.NOT_FOUND) return undefined;
    throw err;
  }
  if (!result.applied) return undefined;
  await announce(deps.messaging, deps.topics, { type: 'failed', operation: result.operation }, log);
  log.warn('operation ended: its terminal event was dead-lettered', {
    operation: claim.operation,
    messageId: message.messageId,
    reason,
  });
  return result.operation;
}
