/**
 * The listener of the waits: one streaming-pull subscription on a topic (wake-ups for waits, full
 * notifications for watches), fanned out by operation name to the followers of this instance.
 *
 * Why it is shaped this way:
 * - **One listener per instance and topic.** A hub holds one subscription, named uniquely for
 *   this instance, created on first use with an expiration policy (so a crashed instance's
 *   subscription vanishes by itself) and deleted on shutdown. It hands each message to the
 *   in-process followers of that operation, kept in a map keyed by operation name. A wait costs a
 *   map entry and one timer, not a subscription, so one instance holds thousands.
 * - **Delete when idle** (`idleCloseMs`, the watch hub): the subscription is deleted once no
 *   follower has been registered for a while, and a new one is created for the next follower, so
 *   an instance without a watch receives no full notification.
 * - **Recreate when lost.** When the stream fails (the subscription was deleted, for instance),
 *   every follower is told to resync (read its row at once and poll fast); the hub recreates the
 *   subscription with backoff, and once it is back every follower resyncs once more
 *   (notifications published during the gap are lost).
 */
import { randomBytes } from 'node:crypto';
import { defaults } from '../../sdk/defaults.js';
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

/** What a hub hands to the followers of an operation: a notification or a wake-up. */
export interface Signal {
  type: NotificationType;
  /** The operation's name. */
  name: string;
  /** The new state (full notifications); absent for a wake-up, whose follower reads the row. */
  operation?: Operation;
  timing?: NotificationTiming;
}

/** What a hub calls on each follower registered for an operation. */
export interface SignalHandler {
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
  private readonly handlers = new Map<string, Set<SignalHandler>>();
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
  register(name: string, handler: SignalHandler): () => void {
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
