/**
 * A fetch that gives up when the reply's headers do not arrive in time, so that `lro` pointed at
 * an address that accepts connections but never answers (a stopped process, a firewall that drops
 * packets) fails within seconds instead of after the HTTP client's five minutes. Only the wait
 * until the headers is bounded: a streamed body (`watch`) may take as long as it takes, and the
 * long polls of `wait` use the plain fetch, since the server answers them only at their end.
 */

/** How long `lro` waits for an answer's headers (connection included). */
export const RESPONSE_TIMEOUT_MS = 10_000;

export class ResponseTimeoutError extends Error {
  override readonly name = 'ResponseTimeoutError';
}

export function withResponseTimeout(
  fetchFn: typeof fetch,
  timeoutMs: number = RESPONSE_TIMEOUT_MS,
): typeof fetch {
  return async (input, init) => {
    const timer = new AbortController();
    const handle = setTimeout(
      () => timer.abort(new ResponseTimeoutError(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const given = init?.signal ?? undefined;
    const signal = given ? AbortSignal.any([given, timer.signal]) : timer.signal;
    try {
      return await fetchFn(input, { ...init, signal });
    } catch (err) {
      if (timer.signal.aborted && !given?.aborted) throw timer.signal.reason;
      throw err;
    } finally {
      clearTimeout(handle);
    }
  };
}
