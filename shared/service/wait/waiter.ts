/**
 * Waiting for operations: the algorithm behind `:wait`, `:batchWait` and `:watch`, in three parts.
 *
 * - **The hub** (hub.ts): one listener subscription per instance and topic, fanned out by
 *   operation name; started on first use, recreated when lost, deleted when idle or on shutdown.
 * - **The follower** (follower.ts): one waiting call; registers, reads, is woken, polls as a
 *   safety net, times out or is abandoned; its time comes from an injected clock (clock.ts).
 * - **The waiter** (this file): what the API calls. It picks each follower's hub and poll
 *   schedule, shares the Bigtable reads of its followers, and ends them all on shutdown.
 *
 * Waits follow wake-ups, watches follow notifications. Every instance receives every message of
 * the topics it follows, so what it follows sets the fan-out (docs/capacity.md). Waits need only
 * to know that their operation ended: their hub follows the wake-up topic (one bodiless message
 * per ended operation). A `:watch` needs every change: the instance opens a second hub on the
 * notifications topic when its first watch starts and deletes that subscription when its last
 * watch ends, so an instance without a watch receives no full notification. With
 * `LRO_WATCH_MODE=poll` watches read their row every `watchPollIntervalMs` instead.
 *
 * Reads are shared: one read per operation at a time serves all its followers, and the followers
 * of one operation woken by one wake-up share the one read that wake-up started.
 */
import { defaults } from '../../sdk/defaults.js';
import { toLroError } from '../../sdk/errors.js';
import type { Logger } from '../../sdk/log.js';
import type { Operation } from '../../sdk/model.js';
import type { OperationStore } from '../store/store.js';
import { type Clock, realClock } from './clock.js';
import { Follower, type FollowOptions, type PollSchedule, type WaitOutcome } from './follower.js';
import type { NotificationHub, Signal } from './hub.js';

export type { FollowOptions, PollSchedule, WaitOutcome } from './follower.js';
export { sameState } from './follower.js';
export { NotificationHub, type NotificationHubOptions, type Signal } from './hub.js';

export interface WaiterOptions {
  store: OperationStore;
  /** The wake-up hub that waits follow; absent when notifications are disabled: polling only. */
  hub?: NotificationHub;
  /** The hub of full notifications that watches follow (opened on demand); absent: they poll. */
  watchHub?: NotificationHub;
  poll?: Partial<PollSchedule>;
  /** Polling of watches without a watch hub (default: the waits' schedule). */
  watchPoll?: Partial<PollSchedule>;
  logger?: Logger;
  /** Default: the real clock. */
  clock?: Clock;
}

/** Follows operations until done, a deadline or the caller leaving. */
export class Waiter {
  private readonly store: OperationStore;
  private readonly hub: NotificationHub | undefined;
  private readonly watchHub: NotificationHub | undefined;
  private readonly poll: PollSchedule;
  private readonly watchPoll: PollSchedule;
  private readonly clock: Clock;
  private readonly inflight = new Map<string, Promise<Operation>>();
  /** The read a wake-up started, shared by the followers it woke. */
  private readonly wakeReads = new WeakMap<Signal, Promise<Operation>>();
  /** The followers in progress, each ended with its latest state by endAll. */
  private readonly followers = new Set<Follower>();
  private ending = false;
  /** Bigtable reads made by followers. */
  reads = 0;

  constructor(options: WaiterOptions) {
    this.store = options.store;
    this.hub = options.hub;
    this.watchHub = options.watchHub;
    this.clock = options.clock ?? realClock;
    this.poll = {
      initialMs: options.poll?.initialMs ?? defaults.waitPollInitialMs,
      notifiedInitialMs: options.poll?.notifiedInitialMs ?? defaults.waitPollNotifiedInitialMs,
      multiplier: options.poll?.multiplier ?? defaults.waitPollMultiplier,
      maxMs: options.poll?.maxMs ?? defaults.waitPollMaxMs,
    };
    this.watchPoll = { ...this.poll, ...options.watchPoll };
  }

  /** Followers in progress (for tests and logs). */
  get active(): number {
    return this.followers.size;
  }

  /**
   * One read per operation at a time, shared by its followers; a wake-up's read is a new one
   * (one in flight may predate the write), shared by the followers that wake-up woke.
   */
  private read(name: string, wakeup?: Signal): Promise<Operation> {
    if (wakeup) {
      let pending = this.wakeReads.get(wakeup);
      if (!pending) {
        pending = this.startRead(name);
        this.wakeReads.set(wakeup, pending);
      }
      return pending;
    }
    return this.inflight.get(name) ?? this.startRead(name);
  }

  private startRead(name: string): Promise<Operation> {
    this.reads++;
    const pending = this.store.get(name).then(
      (record) => record.operation,
      (err: unknown) => {
        throw toLroError(err);
      },
    );
    const settle = () => {
      if (this.inflight.get(name) === pending) this.inflight.delete(name);
    };
    pending.then(settle, settle);
    this.inflight.set(name, pending);
    return pending;
  }

  /**
   * Follows one operation: resolves with its state when done, at the deadline, or when the
   * signal aborts. NOT_FOUND when it does not exist or is deleted meanwhile. A follower with
   * onChange (a watch) follows the watch hub, or polls on the watch schedule without one.
   */
  follow(name: string, options: FollowOptions): Promise<WaitOutcome> {
    if (this.ending) options = { ...options, deadline: this.clock.now() };
    const everyChange = options.onChange !== undefined;
    const follower: Follower = new Follower(name, options, {
      hub: everyChange ? this.watchHub : this.hub,
      poll: everyChange && !this.watchHub ? this.watchPoll : this.poll,
      read: (operation, wakeup) => this.read(operation, wakeup),
      clock: this.clock,
      onEnd: () => this.followers.delete(follower),
    });
    this.followers.add(follower);
    return follower.run();
  }

  /**
   * Ends every follower now and every later one at once, each with the operation's latest state
   * (read again) and reason `shutdown`: an instance that stops answers its waits instead of
   * dropping them.
   */
  endAll(): void {
    this.ending = true;
    for (const follower of [...this.followers]) follower.end();
  }

  /** WaitOperation: the state when done, or the latest at the deadline. */
  async wait(
    name: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<WaitOutcome> {
    return this.follow(name, {
      deadline: this.clock.now() + options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * Batch wait: every operation's state when all are done or at the deadline, in the order of
   * `names`. A missing operation fails the batch with NOT_FOUND.
   */
  async waitAll(
    names: string[],
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<Operation[]> {
    const unique = [...new Set(names)];
    const deadline = this.clock.now() + options.timeoutMs;
    const controller = new AbortController();
    const forward = () => controller.abort();
    options.signal?.addEventListener('abort', forward, { once: true });
    try {
      const outcomes = await Promise.all(
        unique.map((name) =>
          this.follow(name, { deadline, signal: controller.signal }).catch((err: unknown) => {
            controller.abort();
            throw err;
          }),
        ),
      );
      const byName = new Map(outcomes.map((o) => [o.operation.name, o.operation]));
      return names.map((name) => byName.get(name) as Operation);
    } finally {
      options.signal?.removeEventListener('abort', forward);
    }
  }
}
