/**
 * The long-poll loop of `waitForOperation` and `waitForOperations` (client.ts): server waits one
 * after another until every operation is done, the caller's deadline passes or its signal aborts,
 * retrying transient failures with capped backoff.
 */
import { defaults } from './defaults.js';
import { Code, LroError } from './errors.js';
import type { Any, Operation } from './operation.js';

/** An LroError that also carries the last state seen (deadline or abort of a wait). */
export class WaitError extends LroError {
  constructor(
    code: Code,
    message: string,
    readonly operation: Operation | undefined,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? {} : { cause });
  }
}

export interface WaitForOperationOptions {
  /** Overall deadline in milliseconds; DEADLINE_EXCEEDED (a WaitError) when it passes. */
  timeout?: number;
  /** Called with the metadata each time it changed (not on every server reply). */
  onMetadata?: (metadata: Any | undefined, operation: Operation) => void;
  signal?: AbortSignal;
  /** The timeout of each server wait (the server caps it too). */
  pollTimeout?: number;
}

const TRANSIENT = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED]);

/**
 * Calls `waitOnce` (one server wait for `names`, at most `timeoutMs`) until all are done; see
 * waitForOperation.
 */
export async function waitLoop(
  names: string[],
  options: WaitForOperationOptions,
  waitOnce: (timeoutMs: number, signal: AbortSignal) => Promise<Operation[]>,
): Promise<Operation[]> {
  const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
  const pollTimeout = options.pollTimeout ?? defaults.clientWaitRequestTimeoutMs;
  const lastMetadata = new Map<string, string>();
  let latest: Operation[] | undefined;
  let retryDelay: number = defaults.clientRetryInitialMs;
  const label = names.length === 1 ? (names[0] as string) : `${names.length} operations`;
  const last = () => (names.length === 1 ? latest?.[0] : undefined);

  for (;;) {
    if (options.signal?.aborted) {
      throw new WaitError(
        Code.CANCELLED,
        `wait for ${label} aborted`,
        last(),
        options.signal.reason,
      );
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const error = new WaitError(
        Code.DEADLINE_EXCEEDED,
        `${label} not done before the deadline`,
        last(),
      );
      if (latest) Object.assign(error, { operations: latest });
      throw error;
    }
    const timeoutMs = Math.min(remaining, pollTimeout);
    // The request may outlive the server's wait by a little (network, server cap) but not more.
    const guard = new AbortController();
    const timer = setTimeout(
      () => guard.abort(),
      Math.min(remaining, timeoutMs + defaults.clientWaitRequestTimeoutMs),
    );
    const onAbort = () => guard.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      latest = await waitOnce(timeoutMs, guard.signal);
      retryDelay = defaults.clientRetryInitialMs;
      for (const op of latest) {
        const key = JSON.stringify(op.metadata ?? null);
        if (lastMetadata.get(op.name) !== key) {
          lastMetadata.set(op.name, key);
          options.onMetadata?.(op.metadata, op);
        }
      }
      if (latest.every((op) => op.done)) return latest;
    } catch (err) {
      if (options.signal?.aborted) continue; // reported at the top of the loop
      if (guard.signal.aborted) continue; // our own guard: the deadline check decides
      if (!(err instanceof LroError) || !TRANSIENT.has(err.code)) throw err;
      await sleep(Math.min(retryDelay, Math.max(0, deadline - Date.now())), options.signal);
      retryDelay = Math.min(retryDelay * 2, defaults.clientRetryMaxMs);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
