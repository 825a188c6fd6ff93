/**
 * The request core of the client SDK, shared by `OperationsClient` (client.ts) and the web
 * console (console/api.ts, which runs in the browser): the URL of an API path, the headers every
 * request sends, JSON bodies both ways, and Google's error body turned into an `LroError` with its
 * google.rpc.Code. It imports nothing of Node.js, so that the console can load it as it is.
 */
import { Code, codeOfHttpStatus, type ErrorDetail, isCode, LroError } from './errors.js';
import { nonFiniteNumberKey } from './json-limits.js';
import { PARENT_HEADER } from './parent-header.js';

export { PARENT_HEADER };

export interface RequestInput {
  /** The fetch to call (the client's option, else the global one). */
  fetch: typeof fetch;
  /** The API's base URL, without a trailing slash. */
  baseUrl: string;
  method: string;
  /** The path and query after the base URL, starting with "/". */
  path: string;
  /** Sent as JSON when present. */
  body?: unknown;
  /** Sent besides `accept: application/json` (and may replace it). */
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/** A successful reply: its JSON body and its headers. */
export interface Reply<T> {
  body: T;
  headers: Headers;
}

/** `operations/{id}` for an ID or a name. */
export function operationName(idOrName: string): string {
  return idOrName.startsWith('operations/') ? idOrName : `operations/${idOrName}`;
}

/** `?query` for the parameters that are set, or nothing. */
export function querySuffix(query: URLSearchParams): string {
  const text = query.toString();
  return text ? `?${text}` : '';
}

/**
 * Sends one request and reads its JSON reply. Fails with an LroError: the reply's own code for an
 * error reply (Google's `{"error": {...}}`, else the code of its HTTP status), UNAVAILABLE when the
 * API cannot be reached or the reply cannot be read, CANCELLED when the signal aborted, INTERNAL
 * for a successful reply that is not JSON, INVALID_ARGUMENT for a body that JSON cannot carry.
 */
export async function sendRequest<T>(input: RequestInput): Promise<Reply<T>> {
  const { method, path, body, signal } = input;
  const headers: Record<string, string> = { accept: 'application/json', ...input.headers };
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    const nonFinite = nonFiniteNumberKey(body);
    if (nonFinite !== undefined) {
      throw new LroError(
        Code.INVALID_ARGUMENT,
        `${method} ${path}: ${nonFinite}: Infinity and NaN cannot be sent in JSON (they would arrive as null)`,
      );
    }
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (signal) init.signal = signal;
  const fetchFn = input.fetch;
  let res: Response;
  try {
    res = await fetchFn(input.baseUrl + path, init);
  } catch (err) {
    if (signal?.aborted) throw new LroError(Code.CANCELLED, 'request aborted', { cause: err });
    throw new LroError(Code.UNAVAILABLE, `${method} ${path} failed: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const text = await res.text().catch((err: unknown) => {
    throw new LroError(Code.UNAVAILABLE, `reading the reply failed: ${messageOf(err)}`, {
      cause: err,
    });
  });
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) throw errorOf(res.status, parsed, text);
  if (parsed === undefined) {
    throw new LroError(Code.INTERNAL, `${method} ${path}: the reply is not JSON`);
  }
  return { body: parsed as T, headers: res.headers };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The LroError of an error reply: the code from its `status`, else from the HTTP status. */
export function errorOf(httpStatus: number, body: unknown, text: string): LroError {
  const error =
    typeof body === 'object' && body !== null
      ? (body as { error?: { message?: unknown; status?: unknown; details?: unknown } }).error
      : undefined;
  const named =
    typeof error?.status === 'string' ? (Code as Record<string, unknown>)[error.status] : undefined;
  const code = isCode(named) ? named : codeOfHttpStatus(httpStatus);
  const message =
    typeof error?.message === 'string' ? error.message : text.slice(0, 200) || `HTTP ${httpStatus}`;
  const details = Array.isArray(error?.details) ? (error.details as ErrorDetail[]) : [];
  return new LroError(code, message, { details });
}
