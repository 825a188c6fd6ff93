/**
 * A rehearsal before traffic: once the warm-up is done (warm-up.ts), and before the functions
 * framework's server listens, the instance sends one request of its function's usual kind through
 * that server's own request handling (the body guard, express, the framework's conversions, the
 * function's code and the response), on a loopback port of its own that nobody else knows, and
 * drops the answer. V8 compiles a function when it first runs and the client libraries build
 * their encoders on first use, so an instance's first request otherwise pays for a path that no
 * call of the warm-up takes: about 25 ms of the subscriber's first push, 10 ms of the API's first
 * GET.
 *
 * What the request does is the function's to make harmless; both name an operation that does not
 * exist, under a name drawn at random by this process (`rehearsalOperation`). The API's is a GET
 * of it (a 404, which reads one row and logs nothing); the subscriber's is a push of a progress
 * event for it (events/rehearsal.ts), which writes nothing, logs nothing and publishes nothing.
 *
 * Bounded like the warm-up (LRO_WARM_UP_TIMEOUT); skipped when the warm-up did not complete (an
 * instance that cannot reach Bigtable starts as fast as it did); never fails the start.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { log } from '../../sdk/log.js';
import { frameworkTarget } from '../http/push-guard.js';
import { warmUpEnd } from './warm-up.js';

/**
 * The operation the rehearsals name: `operations/lro-rehearsal-` and 32 hexadecimal digits drawn
 * when this process loads, so no other process can know it and no operation has it.
 */
export const rehearsalOperation = `operations/lro-rehearsal-${randomBytes(16).toString('hex')}`;

/** The API's rehearsal: a GET of the rehearsal's operation, which does not exist (a 404). */
export function rehearsalGet(): RehearsalRequest {
  return { method: 'GET', path: `/v1/${rehearsalOperation}`, headers: {} };
}

/** One request: its method, path, headers and body. */
export interface RehearsalRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

let installed = false;

/**
 * When this process serves `target`, the framework's server rehearses `request()` before it
 * listens. Call it at module load, before the framework creates its server; the rehearsal is
 * handed to that server's request listener, so it goes through the function's other server hooks
 * (body guard, push guard) in whatever order they were installed.
 */
export function installRehearsal(target: string, request: () => RehearsalRequest): void {
  if (installed || frameworkTarget(process.argv, process.env) !== target) return;
  installed = true;
  const original = http.createServer;
  http.createServer = ((...args: unknown[]) => {
    http.createServer = original;
    const server = (original as (...a: unknown[]) => http.Server)(...args);
    const listen = server.listen;
    server.listen = ((...listenArgs: unknown[]) => {
      server.listen = listen;
      const go = () => (listen as (...a: unknown[]) => http.Server).apply(server, listenArgs);
      const warmed = warmUpEnd();
      if (warmed?.outcome !== 'done') return go();
      rehearse(server, request, target, warmed.timeoutMs).then(go, go);
      return server;
    }) as typeof server.listen;
    return server;
  }) as typeof http.createServer;
}

/**
 * Sends `request()` through `server`'s handling on a private loopback port, waiting `timeoutMs`
 * at most; never rejects.
 */
async function rehearse(
  server: http.Server,
  request: () => RehearsalRequest,
  target: string,
  timeoutMs: number,
): Promise<'done' | 'failed' | 'timed out'> {
  const started = performance.now();
  // A server of its own, handing its requests to the framework's: the real one listens only after.
  const stage = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    server.emit('request', req, res);
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), timeoutMs);
  });
  const work = (async () => {
    await new Promise<void>((resolve, reject) => {
      stage.once('error', reject);
      stage.listen(0, '127.0.0.1', resolve);
    });
    const { port } = stage.address() as AddressInfo;
    const status = await send(port, request());
    return status < 500 ? ('done' as const) : ('failed' as const);
  })().catch(() => 'failed' as const);
  const outcome = await Promise.race([work, late]);
  clearTimeout(timer);
  stage.closeAllConnections();
  stage.close();
  const ms = Math.round(performance.now() - started);
  if (outcome === 'done') log.info('instance rehearsed a request', { target, ms });
  else log.warn('instance rehearsal incomplete; it serves anyway', { target, outcome, ms });
  return outcome;
}

/** Sends one request to 127.0.0.1:`port` on a connection of its own; resolves its status. */
function send(port: number, request: RehearsalRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: request.method,
        path: request.path,
        agent: false,
        headers: {
          ...request.headers,
          ...(body === undefined ? {} : { 'content-length': String(body.length) }),
        },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}
