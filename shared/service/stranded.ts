/**
 * Terminal events that can never apply (public contract 5: "an operation always ends"). A
 * `succeeded` or `failed` event that the subscriber has to dead-letter (oversized, not the
 * schema, attributes that disagree with the body) will never end its operation, and its callers
 * would wait for ever. When such a message names an operation (in its attributes or its body)
 * that exists and still runs, that operation is ended with INTERNAL, the message saying why and
 * which dead-lettered message it was, through the same terminal-once write as any completion, and
 * announced as `failed`. Progress and heartbeat events that fail are only dead-lettered: the
 * operation can still end by its next events (or by its limits).
 */
import { Code, toLroError } from '../sdk/errors.js';
import type { Logger } from '../sdk/log.js';
import { type Operation, OperationNameSchema, status } from '../sdk/model.js';
import { announce } from '../sdk/notifications.js';
import type { EventMessage, SubscriberDeps } from './subscriber.js';

const TERMINAL_TYPES = new Set(['succeeded', 'failed']);

/** The operation and type a message claims, when it claims to be a terminal event. */
export function terminalClaim(
  message: Pick<EventMessage, 'data' | 'attributes'>,
): { operation: string; type: string } | undefined {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(message.data.toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      body = parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON (or too deep to parse): the attributes may still say what it was.
  }
  const type = message.attributes.type ?? body.type;
  const operation = message.attributes.operation ?? body.operation;
  if (typeof type !== 'string' || !TERMINAL_TYPES.has(type)) return undefined;
  if (!OperationNameSchema.safeParse(operation).success) return undefined;
  return { operation: operation as string, type };
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
  let result: Awaited<ReturnType<SubscriberDeps['store']['complete']>>;
  try {
    result = await deps.store.complete(claim.operation, { error });
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
