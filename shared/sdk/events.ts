/**
 * Worker events (docs/contracts.md, contract 2): one JSON message per event on the events topic.
 *
 *   {"version": 1?, "operation": "operations/{id}",
 *    "type": "metadata" | "succeeded" | "failed" | "heartbeat",
 *    "eventId": "...", "emitTime": "RFC 3339", "metadata"?: Any, "response"?: Any, "error"?: Status}
 *
 * Why this shape:
 * - One discriminated union on `type`, every branch a strict object: a field that the contract
 *   does not know is a schema violation (dead-lettered), never silently ignored, so a typo such
 *   as `"respone"` cannot turn a result into an empty success.
 * - `version` is optional and, when present, must be 1. A future incompatible contract adds a
 *   new literal and a new branch; events without `version` stay version 1 for ever.
 * - `metadata` is allowed on every type (a terminal event carries the final metadata, so the end
 *   state does not depend on delivery order); `response` only on `succeeded`; `error` is
 *   required on `failed` and its code is not 0 (OK is not a failure).
 * - `heartbeat` carries nothing but the envelope: it only renews the operation's heartbeat
 *   (docs/contracts.md, contract 5), so it costs one small conditional write and no notification.
 * - `eventId` makes redeliveries and publisher retries idempotent; `emitTime` orders metadata
 *   ("newest wins"). Message attributes `operation` and `type` repeat the body so that
 *   subscriptions can filter; when present they must agree with it.
 * - Messages larger than `defaults.eventMaxBytes` are rejected: Bigtable cells and notifications
 *   stay small, and a runaway worker cannot fill a row.
 *
 * `schema/event.schema.json` is generated from `WorkerEventSchema` (scripts/generate-event-schema.ts)
 * for workers in other languages; a test keeps the two in sync.
 */
import { z } from 'zod';
import { defaults } from './defaults.js';
import { nonFiniteNumberKey, parseJsonWithin } from './json-limits.js';
import { AnySchema, describeIssues, OperationNameSchema, StatusSchema } from './model.js';

/** The event contract's current version (the value of the optional `version` field). */
export const EVENT_VERSION = 1;

export const EventTypeSchema = z.enum(['metadata', 'succeeded', 'failed', 'heartbeat']);
export type EventType = z.infer<typeof EventTypeSchema>;

/** An event's ID: what makes a redelivery or a republished event change nothing. */
export const EventIdSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
  .describe('Unique per event (a UUID is recommended); duplicates of one eventId apply once.');

const common = {
  version: z.literal(EVENT_VERSION).optional().describe('Contract version; absent means 1.'),
  operation: OperationNameSchema.regex(
    /^operations\/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be "operations/{id}" with a valid ID',
  ).describe('The operation name, "operations/{id}".'),
  eventId: EventIdSchema,
  emitTime: z.iso
    .datetime({ offset: true })
    // Metadata order keys are epoch milliseconds: a time before 1970 would sort backwards.
    .refine((value) => Date.parse(value) >= 0, 'must not be before 1970-01-01T00:00:00Z')
    .describe('When the worker emitted the event (RFC 3339); the newest metadata wins.'),
  metadata: AnySchema.optional().describe('Operation metadata (google.protobuf.Any in JSON).'),
};

export const MetadataEventSchema = z
  .strictObject({ ...common, type: z.literal('metadata') })
  .describe('Progress: new metadata for a running operation.');

/** `common` without metadata: a heartbeat carries no payload. */
const { metadata: _metadata, ...envelope } = common;

export const HeartbeatEventSchema = z
  .strictObject({ ...envelope, type: z.literal('heartbeat') })
  .describe(
    'A sign of life of the worker: renews the heartbeat of a running operation (no payload).',
  );

export const SucceededEventSchema = z
  .strictObject({
    ...common,
    type: z.literal('succeeded'),
    response: AnySchema.optional().describe('The result (google.protobuf.Any in JSON).'),
  })
  .describe('The operation finished successfully.');

export const FailedStatusSchema = StatusSchema.extend({
  code: z.number().int().min(1, 'a failure cannot have code 0 (OK)').max(16),
});

export const FailedEventSchema = z
  .strictObject({
    ...common,
    type: z.literal('failed'),
    error: FailedStatusSchema.describe('The failure (google.rpc.Status); code is not 0.'),
  })
  .describe('The operation failed.');

/** A worker event, version 1. */
export const WorkerEventSchema = z
  .discriminatedUnion('type', [
    MetadataEventSchema,
    SucceededEventSchema,
    FailedEventSchema,
    HeartbeatEventSchema,
  ])
  .meta({
    id: 'WorkerEvent',
    title: 'Worker event',
    description:
      'One JSON message on the events topic, reporting progress, success, failure or a heartbeat of a ' +
      'long-running operation. Attributes "operation" and "type" repeat the body fields.',
  });

export type WorkerEvent = z.infer<typeof WorkerEventSchema>;
export type WorkerEventInput = z.input<typeof WorkerEventSchema>;
export type MetadataEvent = z.infer<typeof MetadataEventSchema>;
export type SucceededEvent = z.infer<typeof SucceededEventSchema>;
export type FailedEvent = z.infer<typeof FailedEventSchema>;
export type HeartbeatEvent = z.infer<typeof HeartbeatEventSchema>;

/** The JSON Schema of the event, as committed in schema/event.schema.json. */
export function eventJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(WorkerEventSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
}

/** The exact text of schema/event.schema.json: two-space indented, with a final newline. */
export function eventSchemaText(): string {
  return `${JSON.stringify(eventJsonSchema(), null, 2)}\n`;
}

/** Message attributes of an event: they repeat the body for filtering. */
export function eventAttributes(event: WorkerEvent): Record<string, string> {
  return { operation: event.operation, type: event.type };
}

export type DecodeResult =
  | { ok: true; event: WorkerEvent }
  | { ok: false; reason: string; operation?: string };

/**
 * Decodes a message of the events topic. A failure here is permanent (retrying cannot fix the
 * message): the reason says why, for the dead-letter topic and the log.
 */
export function decodeEvent(
  data: Buffer | Uint8Array,
  attributes: Readonly<Record<string, string>> = {},
): DecodeResult {
  const claimed = attributes.operation;
  const fail = (reason: string): DecodeResult =>
    claimed === undefined ? { ok: false, reason } : { ok: false, reason, operation: claimed };
  if (data.byteLength > defaults.eventMaxBytes) {
    return fail(`event of ${data.byteLength} bytes exceeds ${defaults.eventMaxBytes}`);
  }
  // Exact: a value JSON.parse would change (1e309, a duplicate key, __proto__) is refused, never
  // stored altered.
  const json = parseJsonWithin(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
    exact: true,
  });
  if (!json.ok) return fail(json.reason);
  const parsed = WorkerEventSchema.safeParse(json.value);
  if (!parsed.success) return fail(`schema violation: ${describeIssues(parsed.error)}`);
  const event = parsed.data;
  if (claimed !== undefined && claimed !== event.operation) {
    return fail(`attribute operation=${claimed} disagrees with the body's ${event.operation}`);
  }
  if (attributes.type !== undefined && attributes.type !== event.type) {
    return fail(`attribute type=${attributes.type} disagrees with the body's ${event.type}`);
  }
  return { ok: true, event };
}

/** Validates an event before it is published; the issues when it is not valid. */
export function checkEvent(
  value: unknown,
): { ok: true; event: WorkerEvent } | { ok: false; reason: string } {
  const parsed = WorkerEventSchema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error) };
  const nonFinite = nonFiniteNumberKey(parsed.data);
  if (nonFinite !== undefined) {
    return {
      ok: false,
      reason: `${nonFinite}: Infinity and NaN cannot be sent in JSON (they would arrive as null)`,
    };
  }
  const size = Buffer.byteLength(JSON.stringify(parsed.data));
  if (size > defaults.eventMaxBytes) {
    return { ok: false, reason: `event of ${size} bytes exceeds ${defaults.eventMaxBytes}` };
  }
  return { ok: true, event: parsed.data };
}
