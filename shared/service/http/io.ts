/**
 * HTTP plumbing of the API: request bodies and queries in, JSON and Google error bodies out.
 * This is the one place that turns a thrown value into an HTTP response.
 *
 * Request bodies are read before the functions framework parses them (body-guard.ts: no
 * compressed bodies, a byte limit while they arrive) and kept as bytes in `req.rawBody` whatever
 * the content type, so that a JSON body is parsed here the same way with or without a
 * `Content-Type`, and never ignored. Failures of the framework's own middleware never reach the
 * function; `installFrameworkErrorBodies` gives them Google's error shape instead of express's
 * HTML page.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { defaults } from '../../sdk/defaults.js';
import { Code, codeName, type ErrorBody, LroError, toLroError } from '../../sdk/errors.js';
import { parseJsonWithin } from '../../sdk/json-limits.js';
import { log } from '../../sdk/log.js';

/** What the API reads from a request: Node's message plus what the framework adds. */
export type ApiRequest = IncomingMessage & { rawBody?: Buffer; originalUrl?: string };

/** An LroError answered with an HTTP status other than its code's (405, 413, 415). */
export class HttpStatusError extends LroError {
  constructor(
    private readonly status_: number,
    code: Code,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }

  override get httpStatus(): number {
    return this.status_;
  }
}

export const methodNotAllowed = (method: string, path: string, allowed: string[]) =>
  new HttpStatusError(
    405,
    Code.UNIMPLEMENTED,
    `method ${method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
    { allow: allowed.join(', ') },
  );

export const routeNotFound = (method: string, path: string) =>
  new LroError(Code.NOT_FOUND, `no route for ${method} ${path}`);

/** Query parameters that Google's clients and tools add and that carry no request data. */
const SYSTEM_PARAMETERS = new Set([
  '$alt',
  'alt',
  '$fields',
  'fields',
  '$prettyPrint',
  'prettyPrint',
  'key',
  'quotaUser',
  'access_token',
  '$callback',
  'callback',
  // ListOperationsRequest.return_partial_success: this service always returns complete pages.
  'returnPartialSuccess',
]);

/** The query as a plain object of strings; a repeated parameter is INVALID_ARGUMENT. */
export function queryOf(search: URLSearchParams): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of search) {
    if (SYSTEM_PARAMETERS.has(key)) continue;
    if (Object.hasOwn(query, key)) {
      throw new LroError(Code.INVALID_ARGUMENT, `query parameter ${key} is given more than once`);
    }
    query[key] = value;
  }
  return query;
}

const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json$/;
/** curl's `-d` sends form-urlencoded; a JSON text under it is still accepted. */
const LENIENT_TYPES = new Set(['application/x-www-form-urlencoded', 'text/plain']);
/**
 * The request content types the API accepts (docs/openapi.yaml lists them). A body without a
 * content type is read as JSON too.
 */
export const ACCEPTED_CONTENT_TYPES = ['application/json', ...LENIENT_TYPES] as const;

/** The media type of the request's Content-Type, lower case, without parameters ('' when none). */
export function mediaTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The charset parameter of the request's Content-Type, lower case, when there is one. */
export function charsetOf(req: IncomingMessage): string | undefined {
  for (const param of (req.headers['content-type'] ?? '').split(';').slice(1)) {
    const [name, value] = param.split('=');
    if (name?.trim().toLowerCase() === 'charset') {
      return (value ?? '')
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase();
    }
  }
  return undefined;
}

/** application/json and the `+json` types (application/cloudevents+json, ...). */
export function isJsonMediaType(type: string): boolean {
  return JSON_TYPE.test(type);
}

/**
 * The JSON body of a request: `{}` when empty. 413 over the limit; 415 for a content type that
 * is not JSON (a body without one is read as JSON) or a charset other than UTF-8; 400 for
 * malformed JSON, JSON nested too deep, a value JSON cannot keep exactly (a number out of a
 * double's range, a duplicate key, a `__proto__` key: jsonProblem in json-limits.ts), or a body
 * that is not an object.
 */
export function jsonBody(req: ApiRequest, maxBytes: number = defaults.httpBodyMaxBytes): unknown {
  const declared = Number(req.headers['content-length'] ?? 0);
  const raw = req.rawBody;
  const size = Math.max(Number.isFinite(declared) ? declared : 0, raw?.length ?? 0);
  if (size > maxBytes) {
    throw new HttpStatusError(
      413,
      Code.INVALID_ARGUMENT,
      `request body of ${size} bytes exceeds the limit of ${maxBytes} bytes`,
    );
  }
  if (!raw || raw.length === 0) return {};
  const type = mediaTypeOf(req);
  if (type !== '' && !JSON_TYPE.test(type) && !LENIENT_TYPES.has(type)) {
    throw new HttpStatusError(
      415,
      Code.INVALID_ARGUMENT,
      `unsupported content type ${JSON.stringify(type)}; send application/json`,
    );
  }
  const charset = charsetOf(req);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpStatusError(
      415,
      Code.INVALID_ARGUMENT,
      `unsupported charset ${JSON.stringify(charset.slice(0, 100))}; send UTF-8`,
    );
  }
  const parsed = parseJsonWithin(raw, { exact: true });
  if (!parsed.ok) throw new LroError(Code.INVALID_ARGUMENT, `request body: ${parsed.reason}`);
  const body = parsed.value;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new LroError(Code.INVALID_ARGUMENT, 'request body must be a JSON object');
  }
  return body;
}

/** Writes a JSON response (no caching: operation state changes). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Writes any thrown value as Google's error body. Server-side failures are logged with their
 * cause; client errors are not (the access log has them).
 */
export function sendError(res: ServerResponse, err: unknown, fields: Record<string, unknown> = {}) {
  const error = toLroError(err);
  if (error.httpStatus >= 500) {
    log.error(error.message, { ...fields, status: error.status, error: error.cause ?? error });
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HttpStatusError) {
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  }
  sendJson(res, error.httpStatus, error.toJSON());
}

/** Google's error body for an HTTP status without an LroError (framework failures). */
export function errorBodyOf(status: number, text: string): ErrorBody {
  const code =
    status === 413 || status === 415 || status === 400
      ? Code.INVALID_ARGUMENT
      : status === 404
        ? Code.NOT_FOUND
        : status >= 500
          ? Code.INTERNAL
          : Code.INVALID_ARGUMENT;
  return { error: { code: status, message: text, status: codeName(code) } };
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;
type ExpressLike = Listener & {
  handle: unknown;
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
};

let installed = false;

/**
 * Makes the next HTTP server created in this process (the functions framework's, created right
 * after it loads this module) answer errors raised by its middleware, such as body-parser's
 * "malformed JSON" (400) or an unsupported charset (415), with Google's JSON error body rather
 * than express's HTML page. It works by handing the express app its final handler as `next`,
 * which express supports; nothing else of the framework changes. Idempotent.
 */
export function installFrameworkErrorBodies(): void {
  if (installed) return;
  installed = true;
  const original = http.createServer;
  const patched = ((...args: unknown[]) => {
    http.createServer = original;
    const listener = args.find((a) => typeof a === 'function') as ExpressLike | undefined;
    if (!listener || typeof listener.handle !== 'function') {
      return (original as (...a: unknown[]) => http.Server)(...args);
    }
    const wrapped: Listener = (req, res) => {
      listener(req, res, (err?: unknown) => {
        const status = frameworkStatus(err);
        const text =
          err === undefined
            ? `no route for ${req.method} ${req.url}`
            : status >= 500
              ? 'internal error'
              : frameworkMessage(err);
        if (status >= 500) log.error('request failed before reaching the function', { error: err });
        if (res.headersSent) {
          res.destroy();
          return;
        }
        sendJson(res, status, errorBodyOf(status, text));
      });
    };
    const rest = args.filter((a) => a !== listener);
    return (original as (...a: unknown[]) => http.Server)(...rest, wrapped);
  }) as typeof http.createServer;
  http.createServer = patched;
}

function frameworkStatus(err: unknown): number {
  if (err === undefined) return 404;
  const status =
    typeof err === 'object' && err !== null
      ? ((err as { status?: unknown; statusCode?: unknown }).status ??
        (err as { statusCode?: unknown }).statusCode)
      : undefined;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

function frameworkMessage(err: unknown): string {
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : '';
  if (type === 'entity.parse.failed') return `request body is not valid JSON: ${message(err)}`;
  if (type === 'entity.too.large') return 'request body too large';
  return message(err);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
