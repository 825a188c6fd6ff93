/**
 * What a worker's failure is reported as, and which publish failures a reporter retries
 * (reporter.ts): a failure (an LroError, any Error, or a google.rpc.Status) becomes the Status of
 * the `failed` event; a publish error's gRPC code decides between retrying and giving up, as
 * Google's Pub/Sub publisher does.
 */
import { Code, invalidArgument, isLroError } from './errors.js';
import { FailedStatusSchema } from './events.js';
import { describeIssues, type Status } from './model.js';

/** What `fail()` takes: an LroError or any Error (code INTERNAL), or a google.rpc.Status. */
export type Failure = Status | Error;

/** The Status a failure is reported as. */
export function statusOf(failure: Failure): Status {
  if (isLroError(failure)) {
    const code = failure.code === Code.OK ? Code.UNKNOWN : failure.code;
    return failure.details.length > 0
      ? { code, message: failure.message, details: failure.details }
      : { code, message: failure.message };
  }
  if (failure instanceof Error) return { code: Code.INTERNAL, message: failure.message };
  const parsed = FailedStatusSchema.safeParse(failure);
  if (!parsed.success) throw invalidArgument(`invalid status: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export function publishErrorCode(err: unknown): Code {
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : -1;
  return typeof code === 'number' && Number.isInteger(code) && code > 0 && code <= 16
    ? (code as Code)
    : Code.UNAVAILABLE;
}

/** The codes for which Google's Pub/Sub publisher retries. */
export function isRetryablePublishCode(code: Code): boolean {
  return (
    code === Code.ABORTED ||
    code === Code.CANCELLED ||
    code === Code.DEADLINE_EXCEEDED ||
    code === Code.INTERNAL ||
    code === Code.RESOURCE_EXHAUSTED ||
    code === Code.UNAVAILABLE ||
    code === Code.UNKNOWN
  );
}
