/**
 * Dead letters (docs/contracts.md, contract 6): dead-letter topic messages as the API shows them.
 *
 * A message gets there two ways:
 * - the subscriber put it there (a permanent failure): its reason is in the attribute
 *   `lroDeadLetterReason`;
 * - the events subscription's dead-letter policy moved it after its delivery attempts: Pub/Sub
 *   adds `CloudPubSubDeadLetterSource*` attributes (delivery count, subscription, publish time)
 *   but no reason, so the reason is "delivery attempts exhausted: <last error>", the last error
 *   being what the subscriber recorded when it failed the last delivery of the same bytes.
 *
 * IDs are `{reversed time}-{message ID}`: 13 digits of (9999999999999 - dead-letter time in ms),
 * so that the rows sort newest first, then the dead-letter topic's message ID, so that a
 * redelivery of one message maps to the same entry.
 */
import { z } from 'zod';
import { DEAD_LETTERS_PREFIX, type DeadLetter } from '../../sdk/dead-letters.js';
import { DEAD_LETTER_ATTRIBUTES } from '../events/messages.js';
import {
  earliest,
  POLICY_PUBLISH_TIME_ATTRIBUTE,
  PUBLISH_TIME_ATTRIBUTE,
} from '../events/publish-time.js';

/** Attributes Pub/Sub adds when a subscription's dead-letter policy forwards a message. */
export const POLICY_ATTRIBUTE_PREFIX = 'CloudPubSubDeadLetterSource';
export const POLICY_DELIVERY_COUNT = 'CloudPubSubDeadLetterSourceDeliveryCount';

const REVERSED_TIME_MAX = 9_999_999_999_999;

export const ListDeadLettersRequestSchema = z.strictObject({
  pageSize: z.coerce
    .number()
    .int('must be an integer')
    .min(0, 'must not be negative')
    .default(0)
    .transform((n) => (n === 0 ? 50 : Math.min(n, 1000))),
  pageToken: z.string().max(2048).default(''),
});

/** What the store keeps of one dead-lettered message. */
export interface DeadLetterEntry {
  id: string;
  reason: string;
  operation?: string;
  data: Buffer;
  attributes: Record<string, string>;
  deadLetterTime: Date;
  /** When the sweeper replays it automatically (its last error was transient); absent: never. */
  autoReplayAt?: Date;
}

export function deadLetterIdOf(time: Date, messageId: string): string {
  const reversed = String(REVERSED_TIME_MAX - time.getTime()).padStart(13, '0');
  const safe = messageId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 128) || 'message';
  return `${reversed}-${safe}`;
}

/** The JSON of an entry. */
export function toDeadLetter(entry: DeadLetterEntry): DeadLetter {
  const letter: DeadLetter = {
    name: `${DEAD_LETTERS_PREFIX}${entry.id}`,
    reason: entry.reason,
    data: entry.data.toString('base64'),
    attributes: entry.attributes,
    deadLetterTime: entry.deadLetterTime.toISOString(),
  };
  if (entry.operation !== undefined) letter.operation = entry.operation;
  const event = parseJson(entry.data);
  if (event !== undefined) letter.event = event;
  return letter;
}

function parseJson(data: Buffer): unknown {
  if (data.length === 0) return undefined;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Whether the subscription's policy (rather than the subscriber) dead-lettered the message. */
export function sentByPolicy(attributes: Record<string, string>): boolean {
  return (
    attributes[DEAD_LETTER_ATTRIBUTES.reason] === undefined &&
    Object.keys(attributes).some((key) => key.startsWith(POLICY_ATTRIBUTE_PREFIX))
  );
}

/** The reason of a message on the dead-letter topic; `lastError` for the policy's messages. */
export function reasonOf(
  attributes: Record<string, string>,
  lastError: string | undefined,
): string {
  const own = attributes[DEAD_LETTER_ATTRIBUTES.reason];
  if (own !== undefined) return own;
  if (sentByPolicy(attributes)) {
    const count = attributes[POLICY_DELIVERY_COUNT];
    const attempts = count === undefined ? '' : ` after ${count} deliveries`;
    return `delivery attempts exhausted: ${lastError ?? `last error not recorded${attempts}`}`;
  }
  return 'published to the dead-letter topic without a reason';
}

/** The operation a message was about: its `operation` attribute, else the body's field. */
export function operationOf(data: Buffer, attributes: Record<string, string>): string | undefined {
  const attribute = attributes.operation;
  if (attribute !== undefined && attribute !== '') return attribute.slice(0, 1024);
  const body = parseJson(data);
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const operation = (body as Record<string, unknown>).operation;
    if (typeof operation === 'string' && operation !== '') return operation.slice(0, 1024);
  }
  return undefined;
}

/**
 * Attribute of an event that the sweeper replayed automatically: how many times (dead-letter-
 * replay.ts). Removed again by a replay through the API, which starts the count afresh.
 */
export const AUTO_REPLAYS_ATTRIBUTE = 'lroAutoReplays';

/** How many times the event of a dead letter was replayed automatically before. */
export function autoReplaysOf(attributes: Record<string, string>): number {
  const count = Number(attributes[AUTO_REPLAYS_ATTRIBUTE] ?? 0);
  return Number.isInteger(count) && count > 0 ? count : 0;
}

/**
 * The attributes to publish again on replay: what the worker sent, without what was added, and
 * the event's first publish time (`lroPublishTime`, see publish-time.ts), so that the replayed
 * event never applies to an operation created after it was first published.
 */
export function originalAttributes(attributes: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const added = new Set<string>([...Object.values(DEAD_LETTER_ATTRIBUTES), AUTO_REPLAYS_ATTRIBUTE]);
  for (const [key, value] of Object.entries(attributes)) {
    if (added.has(key) || key.startsWith(POLICY_ATTRIBUTE_PREFIX)) continue;
    out[key] = value;
  }
  const published = earliest(
    attributes[PUBLISH_TIME_ATTRIBUTE],
    attributes[POLICY_PUBLISH_TIME_ATTRIBUTE],
  );
  if (published !== undefined) out[PUBLISH_TIME_ATTRIBUTE] = published.toISOString();
  return out;
}
