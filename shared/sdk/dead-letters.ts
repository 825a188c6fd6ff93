/**
 * Dead letters on the wire: the DeadLetter resource as `/v1/deadLetters`
 * returns it, its ID, and a page of them. The API, the CLI (`lro dead-letters`), the web console
 * and the tests take their types from here. Only zod is imported, nothing of Node.js.
 */
import { z } from 'zod';

/** The prefix of a dead letter's name: `deadLetters/{id}`. */
export const DEAD_LETTERS_PREFIX = 'deadLetters/';

/**
 * A dead letter's ID: 13 digits of reversed time (newest first), then the dead-letter topic's
 * message ID.
 */
export const DeadLetterIdSchema = z
  .string()
  .regex(/^\d{13}-[A-Za-z0-9_-]{1,128}$/, 'must be a dead-letter ID such as "8235…-1234"');

/** The DeadLetter resource (JSON). */
export const DeadLetterSchema = z.object({
  name: z.string(),
  reason: z.string(),
  operation: z.string().optional(),
  /** The original message body, base64. */
  data: z.string(),
  /** The body parsed as JSON, when it parses. */
  event: z.unknown().optional(),
  attributes: z.record(z.string(), z.string()),
  deadLetterTime: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

/** Reply of `GET /v1/deadLetters`, newest first. */
export const ListDeadLettersResponseSchema = z.object({
  deadLetters: z.array(DeadLetterSchema),
  nextPageToken: z.string(),
});
export type ListDeadLettersResponse = z.infer<typeof ListDeadLettersResponseSchema>;
