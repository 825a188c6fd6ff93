/**
 * The handlers of the waiting routes (api.ts's table): wait for one operation, wait for several
 * (batchWait), and watch one as server-sent events. The waiting itself is the waiter's
 * (wait/waiter.ts); these turn its outcomes into answers.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { defaults } from '../../sdk/defaults.js';
import { toLroError } from '../../sdk/errors.js';
import type {
  BatchWaitRequestSchema,
  BatchWaitResponse,
  Operation,
  WaitOperationRequestSchema,
} from '../../sdk/model.js';
import { formatTiming } from '../../sdk/notifications.js';
import { sendJson } from '../http/io.js';
import type { Config } from '../runtime/config.js';
import type { ApiContext } from './services.js';

/** The requested timeout capped at the maximum, or the default. */
function timeoutOf(config: Config, requested: number | undefined): number {
  return Math.min(requested ?? config.wait.defaultTimeoutMs, config.wait.maxTimeoutMs);
}

export async function wait(
  ctx: ApiContext<unknown, z.output<typeof WaitOperationRequestSchema>>,
): Promise<void> {
  const timeoutMs = timeoutOf(ctx.services.config, ctx.body.timeout);
  const outcome = await ctx.services.waiter.wait(ctx.name, { timeoutMs, signal: ctx.signal });
  if (outcome.reason === 'aborted') return;
  // How many Bigtable reads this wait cost (the first and one on the wake-up); for benchmarks.
  ctx.res.setHeader('x-lro-bigtable-reads', String(outcome.reads));
  // Of those, the safety-net polls (none when the wake-up arrived).
  ctx.res.setHeader('x-lro-safety-net-polls', String(outcome.polls));
  // Where the wake-up's time went (notifications.ts); for benchmarks.
  if (outcome.timing) {
    ctx.res.setHeader(
      'x-lro-wake-timing',
      formatTiming({ ...outcome.timing, respondedAt: Date.now() }),
    );
  }
  sendJson(ctx.res, 200, outcome.operation);
}

export async function batchWait(
  ctx: ApiContext<unknown, z.output<typeof BatchWaitRequestSchema>>,
): Promise<void> {
  const timeoutMs = timeoutOf(ctx.services.config, ctx.body.timeout);
  const operations = await ctx.services.waiter.waitAll(ctx.body.names, {
    timeoutMs,
    signal: ctx.signal,
  });
  if (ctx.signal.aborted) return;
  sendJson(ctx.res, 200, withinBudget(operations, ctx.services.config.responseMaxBytes));
}

/**
 * A batch wait answer within a byte budget: in the order of the names, full states while they
 * fit; the ones that would pass it as `{name, done}`, listed in `truncated`.
 */
function withinBudget(operations: Operation[], maxBytes: number): BatchWaitResponse {
  // Room for the envelope and every name in `truncated`.
  let left = maxBytes - 4096 - operations.reduce((n, op) => n + op.name.length + 3, 0);
  const truncated: string[] = [];
  const answered = operations.map((operation) => {
    const size = Buffer.byteLength(JSON.stringify(operation)) + 1;
    if (size <= left) {
      left -= size;
      return operation;
    }
    truncated.push(operation.name);
    return { name: operation.name, done: operation.done };
  });
  return truncated.length === 0 ? { operations: answered } : { operations: answered, truncated };
}

/**
 * Server-sent events: `event: operation` with the Operation JSON, first the current state and
 * then each change, ending after the done state. Each operation event has an `id:` naming that
 * state; a client that reconnects with `Last-Event-ID` is not sent the current state again when
 * it is the one it saw last. A stream ends at the maximum wait timeout too (with `event:
 * timeout`), and when the instance shuts down (with `event: end`, data `{name, reason:
 * "shutdown", resumable: true}`); clients reconnect. Comment lines keep idle connections alive.
 */
/** The event ID of an operation state: a digest of its JSON. */
function stateId(operation: Operation): string {
  return createHash('sha256').update(JSON.stringify(operation)).digest('base64url').slice(0, 16);
}

export async function watch(ctx: ApiContext): Promise<void> {
  const { res } = ctx;
  // The operation must exist before the stream starts, so that a missing one is a plain 404.
  await ctx.services.store.get(ctx.name);
  const send = (event: string, data: unknown, id?: string) => {
    const line = id === undefined ? '' : `id: ${id}\n`;
    if (!res.writableEnded) res.write(`${line}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const header = ctx.req.headers['last-event-id'];
  let lastEventId = Array.isArray(header) ? header[0] : header;
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    res.statusCode = 200;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
  };
  const heartbeat = setInterval(() => {
    if (started && !res.writableEnded) res.write(': keep-alive\n\n');
  }, defaults.watchHeartbeatMs);
  try {
    const outcome = await ctx.services.waiter.follow(ctx.name, {
      deadline: Date.now() + ctx.services.config.wait.maxTimeoutMs,
      signal: ctx.signal,
      onChange: (operation) => {
        start();
        const id = stateId(operation);
        if (id !== lastEventId) send('operation', operation, id);
        lastEventId = undefined;
      },
    });
    start();
    if (outcome.reason === 'timeout') send('timeout', { name: ctx.name });
    if (outcome.reason === 'shutdown') {
      send('end', { name: ctx.name, reason: 'shutdown', resumable: true });
    }
    res.end();
  } catch (err) {
    if (!started) throw err;
    send('error', toLroError(err).toJSON());
    res.end();
  } finally {
    clearInterval(heartbeat);
  }
}
