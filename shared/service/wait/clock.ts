/**
 * Time as the wait follows it: the current time and one-shot timers, injected so that a test can
 * drive a follower with a fake clock instead of the wall clock.
 */

/** A pending timer, as `setTimeout` returned it; only handed back to `clearTimeout`. */
export type TimerHandle = unknown;

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired; undefined or an already fired timer is ignored. */
  clearTimeout(timer: TimerHandle | undefined): void;
}

/** The process's clock: `Date.now` and the Node.js timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
};
