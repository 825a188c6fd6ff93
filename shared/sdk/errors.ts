/**
 * google.rpc.Code, its HTTP mapping, and the one error type of the project.
 *
 * Every failure that crosses a boundary (HTTP response, event handling, SDK call) is an
 * `LroError` carrying a canonical code. The map below is a `Record<Code, number>`, so adding a
 * code without an HTTP status does not compile.
 */

export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

export type CodeName = keyof typeof Code;

/** HTTP status for each code, as in google/rpc/code.proto. */
export const httpStatusOf: Readonly<Record<Code, number>> = {
  [Code.OK]: 200,
  [Code.CANCELLED]: 499,
  [Code.UNKNOWN]: 500,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
  [Code.UNAVAILABLE]: 503,
  [Code.DATA_LOSS]: 500,
  [Code.UNAUTHENTICATED]: 401,
};

/** Code for an HTTP status, used by clients that receive a body without a `status` field. */
export function codeOfHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.INVALID_ARGUMENT;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.NOT_FOUND;
    case 405:
      return Code.UNIMPLEMENTED;
    case 409:
      return Code.ALREADY_EXISTS;
    case 413:
      return Code.INVALID_ARGUMENT;
    case 429:
      return Code.RESOURCE_EXHAUSTED;
    case 499:
      return Code.CANCELLED;
    case 501:
      return Code.UNIMPLEMENTED;
    case 503:
      return Code.UNAVAILABLE;
    case 504:
      return Code.DEADLINE_EXCEEDED;
    default:
      return status >= 500 ? Code.INTERNAL : Code.UNKNOWN;
  }
}

export function codeName(code: Code): CodeName {
  return Code[code] as CodeName;
}

export function isCode(value: unknown): value is Code {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 16;
}

/**
 * The `code` of an error thrown by a gRPC client (Bigtable, Pub/Sub), a google.rpc.Code number
 * as gRPC reports it; undefined when the error has none.
 */
export function grpcCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? ((err as { code: unknown }).code as number)
    : undefined;
}

/**
 * Whether a value is an LroError, including one of another copy of this module: the client and
 * worker packages each carry their own, and an error of one may reach the other.
 */
export function isLroError(value: unknown): value is LroError {
  if (value instanceof LroError) return true;
  if (!(value instanceof Error) || value.name !== 'LroError') return false;
  const { code, details } = value as { code?: unknown; details?: unknown };
  return isCode(code) && Array.isArray(details);
}

/** JSON details attached to an error (google.protobuf.Any in proto3 JSON form). */
export type ErrorDetail = { '@type': string } & Record<string, unknown>;

export interface LroErrorOptions {
  cause?: unknown;
  details?: ErrorDetail[];
}

/** An error with a google.rpc.Code. `cause` keeps the underlying failure. */
export class LroError extends Error {
  override readonly name = 'LroError';
  readonly code: Code;
  readonly details: ErrorDetail[];

  constructor(code: Code, message: string, options: LroErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
  }

  get httpStatus(): number {
    return httpStatusOf[this.code];
  }

  get status(): CodeName {
    return codeName(this.code);
  }

  /** Google's JSON error body: `{"error":{"code":404,"message":"...","status":"NOT_FOUND"}}`. */
  toJSON(): ErrorBody {
    const error: ErrorBody['error'] = {
      code: this.httpStatus,
      message: this.message,
      status: this.status,
    };
    if (this.details.length > 0) error.details = this.details;
    return { error };
  }
}

export interface ErrorBody {
  error: { code: number; message: string; status: CodeName; details?: ErrorDetail[] };
}

export const invalidArgument = (message: string, cause?: unknown) =>
  new LroError(Code.INVALID_ARGUMENT, message, cause === undefined ? {} : { cause });
export const notFound = (message: string) => new LroError(Code.NOT_FOUND, message);
export const alreadyExists = (message: string) => new LroError(Code.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string) =>
  new LroError(Code.FAILED_PRECONDITION, message);
export const unavailable = (message: string, cause?: unknown) =>
  new LroError(Code.UNAVAILABLE, message, cause === undefined ? {} : { cause });
export const internal = (message: string, cause?: unknown) =>
  new LroError(Code.INTERNAL, message, cause === undefined ? {} : { cause });

/** Any thrown value as an LroError; unknown failures become INTERNAL with the cause kept. */
export function toLroError(err: unknown): LroError {
  if (err instanceof LroError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return internal(message, err);
}

/**
 * Whether retrying may help: the codes that gRPC and Google's clients retry. Used by the
 * subscriber to decide between failing a delivery (redelivery) and dead-lettering.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof LroError) {
    return (
      err.code === Code.UNAVAILABLE ||
      err.code === Code.DEADLINE_EXCEEDED ||
      err.code === Code.ABORTED ||
      err.code === Code.INTERNAL ||
      err.code === Code.UNKNOWN ||
      err.code === Code.RESOURCE_EXHAUSTED
    );
  }
  return true;
}
