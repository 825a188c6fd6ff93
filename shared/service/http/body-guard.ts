/**
 * Request bodies are read here, before the functions framework sees them. The framework parses
 * every body with body-parser before the function runs: it inflates gzip, deflate and br bodies
 * up to 1 GB and parses the result, so a compressed body of a few kilobytes could take an
 * instance's memory before any handler checked a size (Cloud Run's 32 MiB request limit counts
 * compressed bytes). Like http.ts and push-guard.ts, this wraps the listener of the framework's
 * HTTP server, and for each request:
 *
 * - a `Content-Encoding` other than `identity` is refused with 415 and `Accept-Encoding:
 *   identity` (no client of these functions compresses bodies; nothing is inflated);
 * - a `Content-Length` over the function's limit is refused with 413 before anything is read;
 * - otherwise the body is read while its bytes are counted, and refused with 413 as soon as it
 *   passes the limit (a chunked body declares no length);
 * - the bytes read are kept in `req.rawBody` whatever the content type (the API parses them,
 *   http.ts), and, for the subscriber, parsed as JSON into `req.body`, the shape in which the
 *   framework's Pub/Sub and CloudEvent decoding expects it.
 *
 * A request whose body was read is finished, so the framework's body parsers skip it. Refusals
 * use Google's error body; the rest of a refused body is read and discarded (so that a client
 * still sending sees the answer) up to `defaults.refusedBodyDiscardMaxBytes`, past which the
 * connection is closed.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { defaults } from '../../sdk/defaults.js';
import { parseJsonWithin } from '../../sdk/json-limits.js';
import { log } from '../../sdk/log.js';
import { charsetOf, errorBodyOf, isJsonMediaType, mediaTypeOf, sendJson } from './io.js';
import { frameworkTarget } from './push-guard.js';

export interface BodyGuardOptions {
  /** Body bytes at most. */
  maxBytes: number;
  /**
   * Parse the body as JSON into `req.body` (CloudEvent functions); a body of another content
   * type is refused with 415, malformed JSON with 400.
   */
  json?: boolean;
}

/** The body limits of the functions. */
export const bodyLimits = {
  operations: { maxBytes: defaults.httpBodyMaxBytes },
  subscriber: { maxBytes: defaults.pushBodyMaxBytes, json: true },
  subscriberPull: { maxBytes: defaults.httpBodyMaxBytes },
  sweeper: { maxBytes: defaults.httpBodyMaxBytes },
} as const satisfies Record<string, BodyGuardOptions>;

type GuardedRequest = IncomingMessage & { rawBody?: Buffer; body?: unknown };
type Listener = (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => void;

class Refusal {
  constructor(
    readonly status: 400 | 413 | 415,
    readonly message: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

/** Whether the request has a body at all (as body-parser decides: a length or a chunked body). */
function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined ||
    !Number.isNaN(Number.parseInt(req.headers['content-length'] ?? '', 10))
  );
}

/** A refusal decided from the headers alone, before any byte of the body is read. */
export function refusalByHeaders(
  req: IncomingMessage,
  options: BodyGuardOptions,
): Refusal | undefined {
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    return new Refusal(
      415,
      `content encoding ${JSON.stringify(encoding.slice(0, 100))} is not accepted; send the body uncompressed`,
      { 'accept-encoding': 'identity' },
    );
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > options.maxBytes) {
    return new Refusal(
      413,
      `request body of ${declared} bytes exceeds the limit of ${options.maxBytes} bytes`,
    );
  }
  if (options.json && hasBody(req)) {
    const type = mediaTypeOf(req);
    if (type !== '' && !isJsonMediaType(type)) {
      return new Refusal(
        415,
        `unsupported content type ${JSON.stringify(type.slice(0, 100))}; send application/json`,
      );
    }
    const charset = charsetOf(req);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return new Refusal(
        415,
        `unsupported charset ${JSON.stringify(charset.slice(0, 100))}; send UTF-8`,
      );
    }
  }
  return undefined;
}

/**
 * Reads the body within the limit. Resolves true when the request may go on to the framework,
 * false when it was answered (a refusal) or the client went away.
 */
function readBody(req: GuardedRequest, res: ServerResponse, options: BodyGuardOptions) {
  return new Promise<boolean>((resolve) => {
    const early = refusalByHeaders(req, options);
    if (early) {
      refuse(req, res, early, 0);
      resolve(false);
      return;
    }
    if (!hasBody(req)) {
      resolve(true);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= options.maxBytes) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      cleanup();
      refuse(
        req,
        res,
        new Refusal(
          413,
          `request body exceeds the limit of ${options.maxBytes} bytes (chunked, ${received} bytes so far)`,
        ),
        received,
      );
      resolve(false);
    };
    const onEnd = () => {
      cleanup();
      const body = Buffer.concat(chunks, received);
      if (body.length > 0) req.rawBody = body;
      if (options.json && body.length > 0) {
        const parsed = parseJsonWithin(body);
        if (!parsed.ok) {
          refuse(req, res, new Refusal(400, `request body is ${parsed.reason}`), received);
          resolve(false);
          return;
        }
        if (parsed.value === null || typeof parsed.value !== 'object') {
          // As the framework's own parser (strict): an object or an array, never a bare value.
          refuse(req, res, new Refusal(400, 'request body must be a JSON object'), received);
          resolve(false);
          return;
        }
        req.body = parsed.value;
      }
      resolve(true);
    };
    const onGone = () => {
      cleanup();
      resolve(false);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('aborted', onGone);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onGone);
    req.once('aborted', onGone);
  });
}

/**
 * Answers a refusal in Google's error shape, then reads and discards what is left of the body,
 * up to `refusedBodyDiscardMaxBytes`; a body known or found to be larger closes the connection.
 */
function refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, received: number) {
  const limit = defaults.refusedBodyDiscardMaxBytes;
  const declared = Number(req.headers['content-length'] ?? 0);
  for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value);
  if (declared - received > limit) res.setHeader('connection', 'close');
  log.info(`${req.method} ${(req.url ?? '/').split('?')[0]} ${refusal.status}`, {
    httpRequest: {
      requestMethod: req.method,
      requestUrl: req.url,
      status: refusal.status,
      userAgent: req.headers['user-agent'],
    },
    reason: refusal.message,
  });
  sendJson(res, refusal.status, errorBodyOf(refusal.status, refusal.message));
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limit) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

let installed = false;

/**
 * Guards the bodies of the framework's server when this process serves `target` (every function
 * module is loaded in every deployed function, so each function installs its own limits).
 * Call it at module load, before the framework creates its server.
 */
export function installBodyGuard(target: keyof typeof bodyLimits): void {
  if (installed || frameworkTarget(process.argv, process.env) !== target) return;
  installed = true;
  const options: BodyGuardOptions = bodyLimits[target];
  const original = http.createServer;
  http.createServer = ((...args: unknown[]) => {
    http.createServer = original;
    const index = args.findIndex((a) => typeof a === 'function');
    const listener = args[index] as Listener | undefined;
    if (listener) {
      args[index] = Object.assign(
        (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => {
          readBody(req, res, options)
            .then((goOn) => {
              if (goOn) listener(req, res, ...rest);
            })
            .catch((err: unknown) => {
              log.error('request failed before reaching the function', { error: err });
              if (res.headersSent) res.destroy();
              else sendJson(res, 500, errorBodyOf(500, 'internal error'));
            });
        },
        listener,
      );
    }
    return (original as (...a: unknown[]) => http.Server)(...args);
  }) as typeof http.createServer;
}
