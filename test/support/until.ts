/** Waiting for a condition in tests: polls with a growing delay, fails after a time limit. */

/** Polls `condition` every few milliseconds until it holds; fails after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = 'condition',
): Promise<void> {
  await untilValue(async () => ((await condition()) ? true : undefined), timeoutMs, what);
}

/** Polls `probe` until it returns a value other than undefined, and returns it; fails after `timeoutMs`. */
export async function untilValue<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}
