/**
 * How `lro` reaches the API, for every command group: the exit codes, what the entry passes in
 * (`CliEnv`, `CliIo`), the API URL (`--url`, else LRO_API_URL, else the local default), the
 * Google ID token sent to a URL that is not local, the time limit on an answer's start, and the
 * line printed for an API error.
 */
import { Code, codeName, codeOfHttpStatus, isCode, LroError } from '../shared/sdk/errors.js';
import { RESPONSE_TIMEOUT_MS, withResponseTimeout } from './response-timeout.js';

/** Exit codes of `lro`. */
export const Exit = {
  /** The command worked; for wait/watch, the operation succeeded. */
  ok: 0,
  /** wait/watch: the operation failed or was cancelled. */
  failed: 1,
  /** Bad command line. */
  usage: 2,
  /** wait/watch: the timeout passed before the operation was done. */
  notDone: 3,
  /** The API answered with an error, or could not be reached. */
  apiError: 4,
} as const;

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The environment the CLI reads, parsed once by its entry point. */
export interface CliEnv {
  apiUrl?: string | undefined;
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stdout / stderr are terminals (live redrawing instead of one line per change). */
  stdoutIsTty?: boolean;
  stderrIsTty?: boolean;
  columns?: number;
  fetch?: typeof fetch;
  /** How long to wait for an answer to start (default RESPONSE_TIMEOUT_MS; not for long polls). */
  responseTimeoutMs?: number;
  /** Authorization headers for a non-local URL (default: a Google ID token). */
  authHeaders?: (audience: string) => Promise<() => Promise<Record<string, string>>>;
  signal?: AbortSignal;
}

/** A bad command line: exit code 2, with a pointer to the command's --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The API as the commands call it. */
export interface Connection {
  baseUrl: string;
  /** Gives up when an answer does not start within the response timeout. */
  fetch: typeof fetch;
  /** The fetch without that limit, for the long polls of `wait` (answered only at their end). */
  longPollFetch: typeof fetch;
  /** The headers of every request: an ID token for a URL that is not local, else none. */
  headers: () => Promise<Record<string, string>>;
}

/**
 * The connection to `baseUrl` (from resolveUrl); a URL that is not local gets a Google ID token
 * for `audience` (default: the URL), UNAUTHENTICATED when there are no credentials.
 */
export async function connect(
  baseUrl: string,
  audience: string | undefined,
  io: CliIo,
): Promise<Connection> {
  const longPollFetch = io.fetch ?? globalThis.fetch;
  const fetchFn = withResponseTimeout(longPollFetch, io.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS);
  let headers: () => Promise<Record<string, string>> = async () => ({});
  if (!isLocalUrl(baseUrl)) {
    try {
      headers = await (io.authHeaders ?? googleIdTokenHeaders)(audience ?? baseUrl);
    } catch (err) {
      throw new LroError(
        Code.UNAUTHENTICATED,
        `no Google credentials for an ID token (run "gcloud auth application-default login"): ${messageOf(err)}`,
      );
    }
  }
  return { baseUrl, fetch: fetchFn, longPollFetch, headers };
}

/** One JSON request; resolves with the parsed reply ({} when empty), rejects with an LroError. */
export async function requestJson(
  connection: Connection,
  method: string,
  path: string,
  body: unknown,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const init: RequestInit = {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(await connection.headers()),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  };
  let res: Response;
  try {
    res = await connection.fetch(connection.baseUrl + path, init);
  } catch (err) {
    throw new LroError(Code.UNAVAILABLE, `${method} ${path} failed: ${messageOf(err)}`);
  }
  const text = await res.text();
  if (!res.ok) throw errorOfReply(res.status, text);
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

/** The API's base URL from `--url` or LRO_API_URL (else DEFAULT_URL), without a trailing `/`. */
export function resolveUrl(given: string | undefined): string {
  const text = given && given.trim() !== '' ? given.trim() : DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url: "${text}" is not an http(s) URL`);
  }
  return text.replace(/\/+$/, '');
}

/** Whether a URL points at this machine (no ID token is sent there). */
export function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || host === '0.0.0.0' || /^127\./.test(host);
}

export async function googleIdTokenHeaders(
  audience: string,
): Promise<() => Promise<Record<string, string>>> {
  const { GoogleAuth } = await import('google-auth-library');
  const client = await new GoogleAuth().getIdTokenClient(audience);
  return async () => {
    const headers = await client.getRequestHeaders();
    const authorization = headers.get('authorization');
    return authorization ? { authorization } : {};
  };
}

/** The line `lro` prints for an error; an unreachable API names the URL and how to change it. */
export function describeApiError(error: LroError, baseUrl?: string): string {
  if (
    error.code === Code.UNAVAILABLE &&
    /failed: (fetch failed|no answer within)/.test(error.message)
  ) {
    const where = baseUrl === undefined ? '' : ` at ${baseUrl}`;
    return `${error.status}: the API cannot be reached${where} (${error.message}); start it with "npm start", or set --url (or LRO_API_URL) to where it runs`;
  }
  return `${error.status}: ${error.message}`;
}

/** The LroError of an error reply: its Google error body when it has one, else its HTTP status. */
export function errorOfReply(httpStatus: number, text: string): LroError {
  let body: { error?: { status?: unknown; message?: unknown } } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const named =
    typeof body?.error?.status === 'string'
      ? (Code as Record<string, unknown>)[body.error.status]
      : undefined;
  const code = isCode(named) ? named : codeOfHttpStatus(httpStatus);
  const message =
    typeof body?.error?.message === 'string'
      ? body.error.message
      : text.slice(0, 200) || `HTTP ${httpStatus} (${codeName(code)})`;
  return new LroError(code, message);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
