/**
 * Waiting for operations: the algorithm behind `:wait`, `:batchWait` and `:watch`.
 *
 * Why it is shaped this way:
 * - **One listener per instance and topic.** A `NotificationHub` holds one streaming-pull
 *   subscription, named uniquely for this instance, created on first use with an expiration
 *   policy (so a crashed instance's subscription vanishes by itself) and deleted on shutdown. It
 *   fans each message out to the in-process followers of that operation, kept in a map keyed by
 *   operation name. A wait costs a map entry and one timer, not a subscription, so one instance
 *   holds thousands.
 * - **Waits follow wake-ups, watches follow notifications.** Every instance receives every
 *   message of the topics it follows, so what it follows sets the fan-out (docs/capacity.md).
 *   Waits need only to know that their operation ended: their hub follows the wake-up topic (one
 *   bodiless message per ended operation). A `:watch` needs every change: the instance opens a
 *   second hub on the notifications topic when its first watch starts and deletes that
 *   subscription when its last watch ends (`idleCloseMs`), so an instance without a watch
 *   receives no full notification. With `LRO_WATCH_MODE=poll` watches read their row every
 *   `watchPollIntervalMs` instead.
 * - **Register first, then read.** A follower is registered (and the subscription known to
 *   exist) before the operation's row is read. A completion is either in the row already, or it
 *   is written after the read and so its announcement, published after the write, reaches the
 *   subscription that existed before the read. Nothing falls in between.
 * - **A wake-up costs one read, a notification none.** A wake-up carries no state: the woken
 *   follower reads the row once, with a read started after the wake-up arrived (never one that
 *   was already in flight, which may predate the write); the followers of one operation woken
 *   by one message share that read. A notification carries the operation's new JSON, so a
 *   watch uses it directly. A read that was in flight when a message arrived is discarded unless
 *   it found the operation done, so an older row never overwrites a newer state.
 * - **Polling is the safety net.** Notifications can be lost (the subscription deleted, Pub/Sub
 *   trouble, a subscriber that crashed between its write and its publish). Every follower also
 *   reads the row with capped exponential backoff and jitter (`defaults.waitPoll*`), so a lost
 *   notification delays a wait by at most one poll interval, never forever. While notifications
 *   flow the first poll comes late (`waitPollNotifiedInitialMs`), since it only guards against
 *   a rare loss; when they do not (disabled, or the listener failed) polling starts at
 *   `waitPollInitialMs`. Concurrent reads of one operation are shared.
 * - **A failing listener resyncs its followers.** When the stream fails (the subscription was
 *   deleted, for instance), every follower reads its row at once and polls fast; the hub
 *   recreates the subscription with backoff, and once it is back every follower reads once more
 *   (notifications published during the gap are lost) and returns to slow polling.
 * - **Timeouts return the latest state.** At the deadline the follower resolves with the
 *   latest state it knows (done or not); when its hub carries wake-ups (which announce only the
 *   end, not progress) or is unhealthy it reads the row once more first. A caller that goes
 *   away (its AbortSignal) ends the follower at once: timer cleared, entry removed.
 */
import { randomBytes } from 'node:crypto';
import { defaults } from '../../sdk/defaults.js';
import { Code, LroError, toLroError } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Listener, Messaging } from '../../sdk/messaging.js';
import { isNotFound } from '../../sdk/messaging.js';
import type { Operation } from '../../sdk/model.js';
import {
  type NotificationTiming,
  type NotificationType,
  parseNotification,
  parseWakeup,
  timingOf,
} from '../../sdk/notifications.js';
import type { OperationStore } from '../store/store.js';

/** What a hub hands to the followers of an operation: a notification or a wake-up. */
export interface Signal {
  type: NotificationType;
  /** The operation's name. */
  name: string;
  /** The new state (full notifications); absent for a wake-up, whose follower reads the row. */
  operation?: Operation;
  timing?: NotificationTiming;
}

export interface Follower {
  /** A notification or wake-up for the followed operation. */
  notify(signal: Signal): void;
  /**
   * The listener failed or came back: notifications may have been lost meanwhile, so the
   * follower reads the row now and adapts its polling to the listener's health.
   */
  resync(): void;
}

export interface NotificationHubOptions {
  /** What the topic carries: full notifications (the default) or wake-ups. */
  carries?: 'notifications' | 'wakeups';
  /** Subscription name prefix; the name is `{prefix}-{random}` (default `{topic}-waiter`). */
  subscriptionPrefix?: string;
  /**
   * Delete the subscription once no follower has been registered for this long, and create a
   * new one when the next follower comes (the watch hub). Undefined: keep it until close.
   */
  idleCloseMs?: number;
  expirationSeconds?: number;
  /** How long a wait waits for the subscription to be created before relying on polling. */
  startTimeoutMs?: number;
  logger?: Logger;
}

type HubState = 'idle' | 'starting' | 'healthy' | 'recovering' | 'closed';

/** One streaming-pull subscription on a topic, fanned out by operation name. */
export class NotificationHub {
  /** The current subscription's name (a new one after an idle close). */
  subscriptionName: string;
  private readonly prefix: string;
  private readonly carries: 'notifications' | 'wakeups';
  private readonly idleCloseMs: number | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private readonly handlers = new Map<string, Set<Follower>>();
  private state: HubState = 'idle';
  private listener: Listener | undefined;
  private starting: Promise<void> | undefined;
  private recoverTimer: NodeJS.Timeout | undefined;
  private recoverDelayMs: number = defaults.listenerRecreateInitialMs;
  private failedSinceHealthy = false;
  private readonly log: Logger;
  private readonly expirationSeconds: number;
  private readonly startTimeoutMs: number;
  /** Notifications received (for tests and logs). */
  received = 0;

  constructor(
    private readonly messaging: Messaging,
    private readonly topic: string,
    options: NotificationHubOptions = {},
  ) {
    this.prefix = options.subscriptionPrefix ?? `${topic.slice(0, 200)}-waiter`;
    this.subscriptionName = this.newName();
    this.carries = options.carries ?? 'notifications';
    this.idleCloseMs = options.idleCloseMs;
    this.expirationSeconds =
      options.expirationSeconds ?? defaults.listenerSubscriptionExpirationSeconds;
    this.startTimeoutMs = options.startTimeoutMs ?? defaults.listenerStartTimeoutMs;
    this.log = options.logger ?? defaultLog;
  }

  /** Whether its messages carry the operation's state (notifications) or only wake it (wake-ups). */
  get carriesState(): boolean {
    return this.carries === 'notifications';
  }

  private newName(): string {
    return `${this.prefix}-${randomBytes(6).toString('hex')}`;
  }

  /** Whether notifications are flowing (false while starting, recovering or closed). */
  get healthy(): boolean {
    return this.state === 'healthy';
  }

  /** Followers currently registered, across all operations. */
  get followers(): number {
    let n = 0;
    for (const set of this.handlers.values()) n += set.size;
    return n;
  }

  /** Registers a handler for one operation's notifications; returns its removal. */
  register(name: string, handler: Follower): () => void {
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
    }
    set.add(handler);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    return () => {
      const current = this.handlers.get(name);
      if (!current) return;
      current.delete(handler);
      if (current.size === 0) this.handlers.delete(name);
      if (this.handlers.size === 0 && this.idleCloseMs !== undefined) this.scheduleIdleClose();
    };
  }

  private scheduleIdleClose(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.closeIdle();
    }, this.idleCloseMs);
    this.idleTimer.unref();
  }

  /** Deletes the subscription while no follower is registered; the next one creates another. */
  private async closeIdle(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.handlers.size > 0 || this.state === 'closed' || this.state === 'idle') return;
    const listener = this.listener;
    const name = this.subscriptionName;
    this.listener = undefined;
    clearTimeout(this.recoverTimer);
    this.recoverTimer = undefined;
    this.state = 'idle';
    this.failedSinceHealthy = false;
    this.recoverDelayMs = defaults.listenerRecreateInitialMs;
    this.subscriptionName = this.newName();
    const stopping = (async () => {
      await listener?.close().catch(() => undefined);
      try {
        await this.messaging.deleteSubscription(name);
        this.log.info('notification listener removed: no follower left', { subscription: name });
      } catch (err) {
        // Its expiration policy removes it in the end.
        this.log.warn('could not delete an idle listener subscription', {
          subscription: name,
          error: err,
        });
      }
    })();
    this.stopping = stopping;
    await stopping;
    if (this.stopping === stopping) this.stopping = undefined;
  }

  /**
   * Resolves once the subscription exists and is being pulled (true), or when that could not
   * be done within the start timeout (false: polling carries the waits meanwhile).
   */
  async ready(): Promise<boolean> {
    if (this.state === 'healthy') return true;
    if (this.state === 'closed') return false;
    if (this.state === 'idle') this.starting = this.start();
    if (!this.starting) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.startTimeoutMs);
    });
    try {
      await Promise.race([this.starting, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    return this.healthy;
  }

  private async start(): Promise<void> {
    this.state = 'starting';
    try {
      await this.connect();
      if (this.state !== 'starting') return;
      const recovered = this.failedSinceHealthy;
      this.failedSinceHealthy = false;
      this.state = 'healthy';
      this.recoverDelayMs = defaults.listenerRecreateInitialMs;
      this.log.info('notification listener started', { subscription: this.subscriptionName });
      if (recovered) this.resyncAll();
    } catch (err) {
      if ((this.state as HubState) === 'closed') return;
      this.log.warn('notification listener could not start; waits rely on polling', {
        subscription: this.subscriptionName,
        error: err,
      });
      this.scheduleRecovery();
    } finally {
      this.starting = undefined;
    }
  }

  private async connect(): Promise<void> {
    await this.messaging.ensurePullSubscription(this.subscriptionName, this.topic, {
      expirationSeconds: this.expirationSeconds,
      ackDeadlineSeconds: 10,
    });
    if ((this.state as HubState) === 'closed') return;
    this.listener = this.messaging.listen(
      this.subscriptionName,
      (message) => {
        const deliveredAt = Date.now();
        message.ack();
        this.received++;
        let signal: Signal | undefined;
        if (this.carries === 'wakeups') {
          const wakeup = parseWakeup(message);
          if (wakeup) signal = { type: wakeup.type, name: wakeup.operation };
        } else {
          const notification = parseNotification(message);
          if (notification) {
            signal = {
              type: notification.type,
              name: notification.operation.name,
              operation: notification.operation,
            };
          }
        }
        if (!signal) {
          this.log.warn(`ignored a message that is not a ${this.carries.slice(0, -1)}`, {
            messageId: message.id,
          });
          return;
        }
        signal.timing = timingOf(message, deliveredAt);
        this.dispatch(signal);
      },
      (err) => this.onStreamError(err),
      { maxMessages: defaults.listenerMaxOutstandingMessages },
    );
  }

  /** Hands a notification or wake-up to the followers of its operation. */
  dispatch(signal: Signal): void {
    const set = this.handlers.get(signal.name);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler.notify(signal);
      } catch (err) {
        this.log.error('notification handler failed', { operation: signal.name, error: err });
      }
    }
  }

  private onStreamError(err: Error): void {
    if (this.state === 'closed' || this.state === 'recovering' || this.state === 'idle') return;
    this.log.warn('notification listener failed; waits rely on polling until it is back', {
      subscription: this.subscriptionName,
      gone: isNotFound(err),
      error: err,
    });
    this.state = 'recovering';
    const old = this.listener;
    this.listener = undefined;
    old?.close().catch(() => undefined);
    this.scheduleRecovery();
    this.resyncAll();
  }

  private resyncAll(): void {
    for (const set of this.handlers.values()) {
      for (const handler of [...set]) handler.resync();
    }
  }

  private scheduleRecovery(): void {
    if (this.state === 'closed') return;
    this.failedSinceHealthy = true;
    this.state = 'recovering';
    const delay = this.recoverDelayMs;
    this.recoverDelayMs = Math.min(delay * 2, defaults.listenerRecreateMaxMs);
    clearTimeout(this.recoverTimer);
    this.recoverTimer = setTimeout(() => {
      this.recoverTimer = undefined;
      this.starting = this.start();
    }, delay);
    this.recoverTimer.unref();
  }

  /** Stops listening and deletes the subscription. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasStarted = this.state !== 'idle';
    this.state = 'closed';
    clearTimeout(this.recoverTimer);
    clearTimeout(this.idleTimer);
    await this.stopping;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close().catch(() => undefined);
    if (wasStarted) {
      await this.messaging.deleteSubscription(this.subscriptionName);
      this.log.info('notification listener removed', { subscription: this.subscriptionName });
    }
  }
}

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
}

/** Follows operations until done, a deadline or the caller leaving. */
export class Waiter {
  private readonly store: OperationStore;
  private readonly hub: NotificationHub | undefined;
  private readonly watchHub: NotificationHub | undefined;
  private readonly poll: PollSchedule;
  private readonly watchPoll: PollSchedule;
  private readonly inflight = new Map<string, Promise<Operation>>();
  /** The read a wake-up started, shared by the followers it woke. */
  private readonly wakeReads = new WeakMap<Signal, Promise<Operation>>();
  /** Ends each follower in progress with its latest state (see endAll). */
  private readonly enders = new Set<() => void>();
  private ending = false;
  /** Followers in progress (for tests and logs). */
  active = 0;
  /** Bigtable reads made by followers. */
  reads = 0;

  constructor(options: WaiterOptions) {
    this.store = options.store;
    this.hub = options.hub;
    this.watchHub = options.watchHub;
    this.poll = {
      initialMs: options.poll?.initialMs ?? defaults.waitPollInitialMs,
      notifiedInitialMs: options.poll?.notifiedInitialMs ?? defaults.waitPollNotifiedInitialMs,
      multiplier: options.poll?.multiplier ?? defaults.waitPollMultiplier,
      maxMs: options.poll?.maxMs ?? defaults.waitPollMaxMs,
    };
    this.watchPoll = { ...this.poll, ...options.watchPoll };
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
   * signal aborts. NOT_FOUND when it does not exist or is deleted meanwhile.
   */
  async follow(name: string, options: FollowOptions): Promise<WaitOutcome> {
    if (this.ending) options = { ...options, deadline: Date.now() };
    const everyChange = options.onChange !== undefined;
    const hub = everyChange ? this.watchHub : this.hub;
    const poll = everyChange && !this.watchHub ? this.watchPoll : this.poll;
    const initialDelay = () => (hub?.healthy ? poll.notifiedInitialMs : poll.initialMs);
    this.active++;
    let latest: Operation | undefined;
    let notified = 0;
    let reads = 0;
    let polls = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let delay = poll.initialMs;
    let lastError: LroError | undefined;
    let waking: NotificationTiming | undefined;
    let resolveOutcome!: (outcome: WaitOutcome) => void;
    let rejectOutcome!: (err: unknown) => void;
    const outcome = new Promise<WaitOutcome>((resolve, reject) => {
      resolveOutcome = resolve;
      rejectOutcome = reject;
    });
    // The outcome may settle while the registration or the first read is still awaited, before
    // the caller holds it; without a handler meanwhile that would be an unhandled rejection.
    outcome.catch(() => undefined);

    let unregister = () => {};
    const end = () => {
      if (finished) return;
      clearTimeout(timer);
      void readAndOffer().then(() => succeed('shutdown'));
    };
    this.enders.add(end);
    const cleanup = () => {
      finished = true;
      this.enders.delete(end);
      clearTimeout(timer);
      unregister();
      options.signal?.removeEventListener('abort', onAbort);
      this.active--;
    };
    const succeed = (reason: WaitOutcome['reason']) => {
      if (finished) return;
      if (!latest) {
        fail(lastError ?? new LroError(Code.UNAVAILABLE, `could not read ${name}`));
        return;
      }
      cleanup();
      resolveOutcome({
        operation: latest,
        reason,
        reads,
        polls,
        ...(reason === 'done' && waking ? { timing: waking } : {}),
      });
    };
    const fail = (err: unknown) => {
      if (finished) return;
      cleanup();
      rejectOutcome(err);
    };
    const offer = (operation: Operation) => {
      if (finished || latest?.done) return;
      if (latest && sameState(latest, operation)) return;
      latest = operation;
      options.onChange?.(operation);
      if (operation.done) succeed('done');
    };
    const onAbort = () => {
      if (latest) succeed('aborted');
      else fail(new LroError(Code.CANCELLED, 'the caller went away'));
    };
    const readAndOffer = async (wakeup?: Signal): Promise<void> => {
      const seen = notified;
      try {
        reads++;
        const operation = await this.read(name, wakeup);
        // A message that arrived during the read is at least as new as the row we read.
        if (notified === seen || operation.done) {
          waking = wakeup?.timing;
          offer(operation);
          waking = undefined;
        }
      } catch (err) {
        const error = toLroError(err);
        if (error.code === Code.NOT_FOUND) fail(error);
        else lastError = error;
      }
    };
    const schedule = () => {
      if (finished) return;
      clearTimeout(timer);
      const now = Date.now();
      const jittered = delay * (0.8 + Math.random() * 0.4);
      const wake = Math.min(now + jittered, options.deadline);
      timer = setTimeout(tick, Math.max(0, wake - now));
    };
    const tick = async () => {
      if (finished) return;
      if (Date.now() >= options.deadline) {
        // Wake-ups announce only the end: the latest metadata is in the row.
        if (!hub?.healthy || !hub.carriesState || !latest) await readAndOffer();
        succeed('timeout');
        return;
      }
      polls++;
      await readAndOffer();
      delay = Math.min(delay * poll.multiplier, poll.maxMs);
      schedule();
    };

    if (options.signal?.aborted) {
      this.active--;
      this.enders.delete(end);
      throw new LroError(Code.CANCELLED, 'the caller went away');
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (hub) {
      unregister = hub.register(name, {
        notify: (signal) => {
          if (finished) return;
          if (signal.type === 'deleted') {
            fail(new LroError(Code.NOT_FOUND, `operation ${name} was deleted`));
            return;
          }
          notified++;
          if (signal.operation === undefined) {
            // A wake-up: the change is in the row.
            void readAndOffer(signal);
            return;
          }
          waking = signal.timing;
          offer(signal.operation);
          waking = undefined;
        },
        resync: () => {
          if (finished) return;
          clearTimeout(timer);
          delay = initialDelay();
          void readAndOffer().then(schedule);
        },
      });
      await hub.ready();
      delay = initialDelay();
    }
    if (!finished) await readAndOffer();
    if (!finished) {
      if (!latest && lastError) fail(lastError);
      else schedule();
    }
    return outcome;
  }

  /**
   * Ends every follower now and every later one at once, each with the operation's latest state
   * (read again) and reason `shutdown`: an instance that stops answers its waits instead of
   * dropping them.
   */
  endAll(): void {
    this.ending = true;
    for (const end of [...this.enders]) end();
  }

  /** WaitOperation: the state when done, or the latest at the deadline. */
  async wait(
    name: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<WaitOutcome> {
    return this.follow(name, {
      deadline: Date.now() + options.timeoutMs,
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
    const deadline = Date.now() + options.timeoutMs;
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

/** Whether two states of an operation are the same (done, result and metadata). */
export function sameState(a: Operation, b: Operation): boolean {
  return (
    a.done === b.done &&
    JSON.stringify(a.metadata) === JSON.stringify(b.metadata) &&
    JSON.stringify(a.error) === JSON.stringify(b.error) &&
    JSON.stringify(a.response) === JSON.stringify(b.response)
  );
}
