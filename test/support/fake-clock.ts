/**
 * A clock for unit tests: time stands still until the test advances it, and the timers due by
 * then fire in order, each followed by the promise callbacks it set off.
 */
import type { Clock, TimerHandle } from '../../shared/service/wait/clock.js';

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/** Lets every pending promise callback run (a macrotask comes after all microtasks). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers = new Set<Timer>();
  private readonly onTimer: (() => void)[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.current + Math.max(0, ms), seq: this.seq++, callback };
    this.timers.add(timer);
    for (const resolve of this.onTimer.splice(0)) resolve();
    return timer;
  }

  clearTimeout(timer: TimerHandle | undefined): void {
    this.timers.delete(timer as Timer);
  }

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /** When the next timer fires (undefined: none is pending). */
  get next(): number | undefined {
    let first: Timer | undefined;
    for (const t of this.timers) if (!first || t.at < first.at) first = t;
    return first?.at;
  }

  /** Resolves once a timer is pending (at once when one is). */
  timerSet(): Promise<void> {
    if (this.timers.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.onTimer.push(resolve));
  }

  /** Moves time forward by `ms`, firing the timers due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await settle();
    for (;;) {
      let due: Timer | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (!due || t.at < due.at || (t.at === due.at && t.seq < due.seq))) {
          due = t;
        }
      }
      if (!due) break;
      this.timers.delete(due);
      this.current = due.at;
      due.callback();
      await settle();
    }
    this.current = target;
  }
}
