/**
 * Orderly shutdown of a function instance on SIGTERM (Cloud Run scaling down; it allows 10 s
 * before SIGKILL) and SIGINT (Ctrl-C under `npm start`).
 *
 * The functions framework registers its own SIGTERM/SIGINT handler once its server listens, and
 * that handler calls `process.exit()` at once: every request in flight is cut. This module takes
 * its place, in the cloud (the framework's own server) and locally alike:
 *
 * 1. the HTTP server stops accepting connections; requests arriving on open keep-alive
 *    connections are for the application to refuse (`shuttingDown(req)`), while a request that
 *    arrived before the signal is in flight and answered, even if the application sees it only
 *    after the signal (its body was still being read, for instance);
 * 2. the `drain` hooks run: the API answers its pending waits with the latest state and ends its
 *    watches with a final event;
 * 3. requests in flight finish (the subscriber's deliveries, the answers of step 2);
 * 4. the `close` hooks run: the API deletes its notification subscription, clients close;
 * 5. the process exits 0, at the latest `defaults.shutdownGraceMs` after the signal.
 *
 * It finds the framework's server by watching `http.createServer` once, as http.ts does.
 */
import http, { type IncomingMessage, type Server } from 'node:http';
import { defaults } from '../../sdk/defaults.js';
import { log } from '../../sdk/log.js';

type Hook = () => Promise<void> | void;

const drainHooks: Hook[] = [];
const closeHooks: Hook[] = [];
let server: Server | undefined;
/** Requests that arrived before the signal: in flight, answered rather than refused. */
const admitted = new WeakSet<IncomingMessage>();
let inFlight = 0;
let settled: (() => void) | undefined;
let stopping = false;
let draining = false;
let installed = false;

/**
 * Whether the instance is shutting down; with `req`, whether that request came after the signal
 * (and should be refused with 503). A request the server received before the signal is in
 * flight: the answer to a wait is its latest state, not a refusal.
 */
export function shuttingDown(req?: IncomingMessage): boolean {
  return stopping && !(req && admitted.has(req));
}

/**
 * Registers work for step 2 (answer what waits) or step 4 (release resources). A drain hook
 * registered once step 2 has begun (by a request in flight that built its services late) runs at
 * once.
 */
export function onShutdown(phase: 'drain' | 'close', hook: Hook): void {
  (phase === 'drain' ? drainHooks : closeHooks).push(hook);
  if (phase === 'drain' && draining) void runHooks([hook], 'drain');
}

/**
 * Takes over SIGTERM and SIGINT for the HTTP server created next in this process (the functions
 * framework's). Idempotent; call it when the function module loads.
 */
export function installGracefulShutdown(): void {
  if (installed) return;
  installed = true;
  const original = http.createServer;
  http.createServer = ((...args: unknown[]) => {
    http.createServer = original;
    const created = (original as (...a: unknown[]) => Server)(...args);
    adopt(created);
    return created;
  }) as typeof http.createServer;
}

/** Manages `target` (for servers not created through http.createServer, and for tests). */
export function adopt(target: Server): void {
  server = target;
  target.on('request', (req, res) => {
    if (!stopping) admitted.add(req);
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) settled?.();
    });
  });
  // The framework registers its handlers in its listen callback, which runs after this listener:
  // take over on the next turn.
  target.once('listening', () => setImmediate(takeOverSignals));
}

function takeOverSignals(): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
    process.on(signal, () => {
      if (stopping) return;
      void shutdown(signal);
    });
  }
}

async function runHooks(hooks: Hook[], phase: string): Promise<void> {
  const results = await Promise.allSettled(hooks.map(async (hook) => hook()));
  for (const result of results) {
    if (result.status === 'rejected') {
      log.warn(`shutdown ${phase} step failed`, { error: result.reason });
    }
  }
}

/** Steps 1 to 5; exported for tests that drive an adopted server. */
export async function shutdown(
  signal: string,
  exit: (code: number) => void = (code) => process.exit(code),
) {
  stopping = true;
  const started = Date.now();
  const force = setTimeout(() => {
    log.warn('shutdown grace period over; exiting with requests in flight', { inFlight });
    exit(0);
  }, defaults.shutdownGraceMs);
  log.info('shutting down', { signal, inFlight });
  server?.close();
  server?.closeIdleConnections();
  draining = true;
  await runHooks(drainHooks, 'drain');
  if (inFlight > 0) await new Promise<void>((resolve) => (settled = resolve));
  server?.closeIdleConnections();
  await runHooks(closeHooks, 'close');
  clearTimeout(force);
  log.info('shut down', { signal, ms: Date.now() - started });
  exit(0);
}
