/**
 * One waiting call: a `:wait`, one operation of a `:batchWait`, or a `:watch`, followed until its
 * operation is done, its deadline passes, or its caller goes away.
 *
 * Why it is shaped this way:
 * - **Register first, then read.** A follower is registered with its hub (and the subscription
 *   known to exist) before the operation's row is read. A completion is either in the row
 *   already, or it is written after the read and so its announcement, published after the write,
 *   reaches the subscription that existed before the read. Nothing falls in between.
 * - **A wake-up costs one read, a notification none.** A wake-up carries no state: the woken
 *   follower reads the row once, with a read started after the wake-up arrived (never one that
 *   was already in flight, which may predate the write). A notification carries the operation's
 *   new JSON, so a watch uses it directly. A read that was in flight when a message arrived is
 *   discarded unless it found the operation done, so an older row never overwrites a newer state.
 * - **Polling is the safety net.** Notifications can be lost (the subscription deleted, Pub/Sub
 *   trouble, a subscriber that crashed between its write and its publish). Every follower also
 *   reads the row with capped exponential backoff and jitter (`PollSchedule`), so a lost
 *   notification delays a wait by at most one poll interval, never forever. While notifications
 *   flow the first poll comes late (`notifiedInitialMs`, `LRO_WAIT_SAFETY_POLL`), since it only
 *   guards against a rare loss; when they do not (disabled, or the listener failed) polling
 *   starts at `initialMs`. When the hub asks for a resync, the follower reads at once and
 *   restarts its schedule for the hub's health.
 * - **Timeouts return the latest state.** At the deadline the follower resolves with the latest
 *   state it knows (done or not); when its hub carries wake-ups (which announce only the end, not
 *   progress) or is unhealthy it reads the row once more first. A caller that goes away (its
 *   AbortSignal) ends the follower at once: timer cleared, registration removed.
 * - **Time is injected** (`Clock`), so the schedule, the deadline and the timers can be tested
 *   with a fake clock.
 */
import { Code, LroError, toLroError } from '../../sdk/errors.js';
import type { Operation } from '../../sdk/model.js';
import type { NotificationTiming } from '../../sdk/notifications.js';
import { type Clock, realClock, type TimerHandle } from './clock.js';
import type { Signal, SignalHandler } from './hub.js';

export interface PollSchedule {
  /** First delay when polling alone carries the wait. */
  initialMs: number;
  /** First delay while notifications flow (polling is only the safety net then). */
  notifiedInitialMs: number;
  multiplier: number;
  maxMs: number;
}

export interface FollowOptions {
  /** Absolute deadline (epoch ms). */
  deadline: number;
  signal?: AbortSignal;
  /**
   * Called with each new state, first the one read at the start. A follower with onChange (a
   * watch) follows every change: full notifications (the watch hub) or watch polling; one without
   * (a wait) follows wake-ups.
   */
  onChange?: (operation: Operation) => void;
}

export interface WaitOutcome {
  operation: Operation;
  /** Why the follow ended (`shutdown`: the instance is stopping; the state is the latest). */
  reason: 'done' | 'timeout' | 'aborted' | 'shutdown';
  /** Bigtable reads this follower waited on (shared reads count for each of their followers). */
  reads: number;
  /** Of those, the safety-net polls (reads on the poll schedule, not on a wake-up or the first). */
  polls: number;
  /** The timing of the notification that ended the follow, when one did. */
  timing?: NotificationTiming;
}

/** The hub as a follower uses it (a NotificationHub). */
export interface FollowedHub {
  /** Whether notifications are flowing. */
  readonly healthy: boolean;
  /** Whether its messages carry the operation's state (notifications) or only wake it. */
  readonly carriesState: boolean;
  /** Registers a handler for one operation's signals; returns its removal. */
  register(name: string, handler: SignalHandler): () => void;
  /** Resolves once the subscription is pulled (true) or the start timed out (false). */
  ready(): Promise<boolean>;
}

export interface FollowerContext {
  /** The hub whose signals the follower follows; absent: it polls only. */
  hub?: FollowedHub | undefined;
  poll: PollSchedule;
  /** Reads the operation's row; a wake-up's read is one started after that wake-up arrived. */
  read(name: string, wakeup?: Signal): Promise<Operation>;
  /** Default: the real clock. */
  clock?: Clock;
  /** The poll jitter's source, in [0, 1) (default Math.random). */
  random?: () => number;
  /** Called once when the follower ends, however it ends. */
  onEnd?: () => void;
}

/** Follows one operation; `run` once. */
export class Follower implements SignalHandler {
  private readonly hub: FollowedHub | undefined;
  private readonly poll: PollSchedule;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** The latest state known (read or notified). */
  private latest: Operation | undefined;
  /** The last read's error, answered when no state was ever read. */
  private lastError: LroError | undefined;
  /** Signals received, so that a read older than one of them is not offered. */
  private notified = 0;
  private reads = 0;
  private polls = 0;
  private finished = false;
  private timer: TimerHandle | undefined;
  /** The next poll's delay before jitter. */
  private delay: number;
  private unregister = () => {};
  private readonly outcome: Promise<WaitOutcome>;
  private resolveOutcome!: (outcome: WaitOutcome) => void;
  private rejectOutcome!: (err: unknown) => void;

  constructor(
    readonly name: string,
    private readonly options: FollowOptions,
    private readonly context: FollowerContext,
  ) {
    this.hub = context.hub;
    this.poll = context.poll;
    this.clock = context.clock ?? realClock;
    this.random = context.random ?? Math.random;
    this.delay = this.poll.initialMs;
    this.outcome = new Promise<WaitOutcome>((resolve, reject) => {
      this.resolveOutcome = resolve;
      this.rejectOutcome = reject;
    });
    // The outcome may settle while the registration or the first read is still awaited, before
    // the caller holds it; without a handler meanwhile that would be an unhandled rejection.
    this.outcome.catch(() => undefined);
  }

  /**
   * Resolves with the operation's state when done, at the deadline, or when the signal aborts.
   * NOT_FOUND when it does not exist or is deleted meanwhile.
   */
  async run(): Promise<WaitOutcome> {
    const { signal } = this.options;
    if (signal?.aborted) {
      this.finished = true;
      this.context.onEnd?.();
      throw new LroError(Code.CANCELLED, 'the caller went away');
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (this.hub) {
      this.unregister = this.hub.register(this.name, this);
      await this.hub.ready();
      this.delay = this.initialDelay();
    }
    if (!this.finished) await this.readAndOffer();
    if (!this.finished) {
      if (!this.latest && this.lastError) this.fail(this.lastError);
      else this.schedule();
    }
    return this.outcome;
  }

  /** A notification or wake-up for the followed operation (from the hub). */
  notify(signal: Signal): void {
    if (this.finished) return;
    if (signal.type === 'deleted') {
      this.fail(new LroError(Code.NOT_FOUND, `operation ${this.name} was deleted`));
      return;
    }
    this.notified++;
    // A wake-up: the change is in the row.
    if (signal.operation === undefined) void this.readAndOffer(signal);
    else this.offer(signal.operation, signal.timing);
  }

  /** The hub's listener failed or came back: read now, poll for its health (from the hub). */
  resync(): void {
    if (this.finished) return;
    this.clock.clearTimeout(this.timer);
    this.delay = this.initialDelay();
    void this.readAndOffer().then(() => this.schedule());
  }

  /** Ends the follow now with the operation's latest state, read again (reason `shutdown`). */
  end(): void {
    if (this.finished) return;
    this.clock.clearTimeout(this.timer);
    void this.readAndOffer().then(() => this.succeed('shutdown'));
  }

  private initialDelay(): number {
    return this.hub?.healthy ? this.poll.notifiedInitialMs : this.poll.initialMs;
  }

  private readonly onAbort = (): void => {
    if (this.latest) this.succeed('aborted');
    else this.fail(new LroError(Code.CANCELLED, 'the caller went away'));
  };

  private cleanup(): void {
    this.finished = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.unregister();
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.context.onEnd?.();
  }

  private succeed(reason: WaitOutcome['reason'], timing?: NotificationTiming): void {
    if (this.finished) return;
    if (!this.latest) {
      this.fail(this.lastError ?? new LroError(Code.UNAVAILABLE, `could not read ${this.name}`));
      return;
    }
    this.cleanup();
    this.resolveOutcome({
      operation: this.latest,
      reason,
      reads: this.reads,
      polls: this.polls,
      ...(timing ? { timing } : {}),
    });
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.cleanup();
    this.rejectOutcome(err);
  }

  /** A new state: kept and reported when it differs; done ends the follow. */
  private offer(operation: Operation, timing?: NotificationTiming): void {
    if (this.finished || this.latest?.done) return;
    if (this.latest && sameState(this.latest, operation)) return;
    this.latest = operation;
    this.options.onChange?.(operation);
    if (operation.done) this.succeed('done', timing);
  }

  private async readAndOffer(wakeup?: Signal): Promise<void> {
    const seen = this.notified;
    try {
      this.reads++;
      const operation = await this.context.read(this.name, wakeup);
      // A message that arrived during the read is at least as new as the row we read.
      if (this.notified === seen || operation.done) this.offer(operation, wakeup?.timing);
    } catch (err) {
      const error = toLroError(err);
      if (error.code === Code.NOT_FOUND) this.fail(error);
      else this.lastError = error;
    }
  }

  /** The next poll, after the current delay with ±20 % jitter, or at the deadline. */
  private schedule(): void {
    if (this.finished) return;
    this.clock.clearTimeout(this.timer);
    const now = this.clock.now();
    const jittered = this.delay * (0.8 + this.random() * 0.4);
    const wake = Math.min(now + jittered, this.options.deadline);
    this.timer = this.clock.setTimeout(() => void this.tick(), Math.max(0, wake - now));
  }

  private async tick(): Promise<void> {
    if (this.finished) return;
    if (this.clock.now() >= this.options.deadline) {
      // Wake-ups announce only the end: the latest metadata is in the row.
      if (!this.hub?.healthy || !this.hub.carriesState || !this.latest) await this.readAndOffer();
      this.succeed('timeout');
      return;
    }
    this.polls++;
    await this.readAndOffer();
    this.delay = Math.min(this.delay * this.poll.multiplier, this.poll.maxMs);
    this.schedule();
  }
}

/** Whether two states of an operation are the same (done, result and metadata). */
export function sameState(a: Operation, b: Operation): boolean {
  return (
    a.done === b.done &&
    JSON.stringify(a.metadata) === JSON.stringify(b.metadata) &&
    JSON.stringify(a.error) === JSON.stringify(b.error) &&
    JSON.stringify(a.response) === JSON.stringify(b.response)
  );
}
