/**
 * The subscriber's rehearsal (runtime/rehearsal.ts): one push of a progress event, as Pub/Sub
 * sends it, for an operation that does not exist, named at random when this process loads
 * (`rehearsalOperation`: `operations/lro-rehearsal-` and 32 hexadecimal digits). It
 * takes the path of every push (decoding, the conditional write of a progress event, the read
 * that finds why it did not apply) and ends where an event for an unknown operation ends; as a
 * rehearsal it logs nothing and records no failure (delivery.ts), and its write needs a row that
 * does not exist, so nothing is written and nothing is announced.
 */
import { randomUUID } from 'node:crypto';
import { eventAttributes, type WorkerEvent } from '../../sdk/events.js';
import { createLogger, type Logger } from '../../sdk/log.js';
import { type RehearsalRequest, rehearsalOperation } from '../runtime/rehearsal.js';
import type { EventMessage } from './messages.js';

/** Whether `message` is this process's rehearsal (its event's operation is the drawn name). */
export function isRehearsal(message: EventMessage): boolean {
  return message.attributes?.operation === rehearsalOperation;
}

/** A logger that formats its entries as any other and writes none. */
export const rehearsalLog: Logger = createLogger({}, () => undefined);

/** The push of the rehearsal's event to the subscriber, for `project`'s events topic. */
export function rehearsalPush(project: string, eventsTopic: string): RehearsalRequest {
  const now = new Date().toISOString();
  const event: WorkerEvent = {
    version: 1,
    operation: rehearsalOperation,
    eventId: randomUUID(),
    emitTime: now,
    type: 'metadata',
    metadata: { '@type': 'type.googleapis.com/lro.Rehearsal', percent: 0 },
  };
  const topic = `projects/${project}/topics/${eventsTopic}`;
  return {
    method: 'POST',
    path: `/${topic}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(event)).toString('base64'),
        attributes: eventAttributes(event),
        messageId: `rehearsal-${randomUUID()}`,
        publishTime: now,
      },
      subscription: `projects/${project}/subscriptions/lro-rehearsal`,
    }),
  };
}
