/**
 * The subscriber function answers Pub/Sub pushes only. Anything else (a browser, `lro get` or
 * curl pointed at the subscriber's port instead of the API's) gets a 4xx with Google's error body
 * saying what this endpoint is, instead of reaching the functions framework's CloudEvent decoding
 * and failing there with a 500. Like http.ts, it wraps the listener of the next HTTP server
 * created in this process (the framework's).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { errorBodyOf, sendJson } from './io.js';

type Listener = (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => void;

const WHAT =
  'this is the subscriber function: it takes Pub/Sub push deliveries (POST) only; the operations API is the other function';

/** The 4xx for a request that cannot be a push delivery, or undefined when it may be one. */
export function notAPush(
  method: string,
  path: string,
): { status: number; message: string } | undefined {
  if (method !== 'POST') return { status: 405, message: `${method} ${path}: ${WHAT}` };
  if (path.startsWith('/v1/') || path === '/v1' || path.startsWith('/console')) {
    return { status: 404, message: `${method} ${path}: ${WHAT}` };
  }
  return undefined;
}

let installed = false;

/** The framework's target in this process: `--target` or FUNCTION_TARGET, as the framework reads it. */
export function frameworkTarget(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg.startsWith('--target=')) return arg.slice('--target='.length);
    if (arg === '--target') return argv[i + 1];
  }
  return env.FUNCTION_TARGET;
}

/**
 * Guards the framework's server when this process serves `target` (every function module is
 * loaded in every deployed function, so the guard must not apply to the API).
 */
export function installPushGuard(target: string): void {
  if (installed || frameworkTarget(process.argv, process.env) !== target) return;
  installed = true;
  const original = http.createServer;
  http.createServer = ((...args: unknown[]) => {
    http.createServer = original;
    const index = args.findIndex((a) => typeof a === 'function');
    const listener = args[index] as Listener | undefined;
    if (listener) {
      const guarded = Object.assign(
        (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => {
          const path = (req.url ?? '/').split('?')[0] ?? '/';
          const refused = notAPush((req.method ?? 'GET').toUpperCase(), path);
          if (!refused) {
            listener(req, res, ...rest);
            return;
          }
          if (refused.status === 405) res.setHeader('allow', 'POST');
          req.resume();
          sendJson(res, refused.status, errorBodyOf(refused.status, refused.message));
        },
        listener,
      );
      args[index] = guarded;
    }
    return (original as (...a: unknown[]) => http.Server)(...args);
  }) as typeof http.createServer;
}
