/**
 * The pull subscriber: the same work as the push subscriber (delivery.ts), on messages this
 * instance pulls instead of requests Pub/Sub pushes, so that a busy deployment pays for an
 * always-on instance rather than for one billed request per event (docs/capacity.md).
 *
 * Two streaming pulls: the events subscription, whose messages go to `handleEventMessage`, and
 * the dead-letter store subscription (`{dead-letter topic}-store`), whose messages go to
 * `storeDeadLetter`, both through the push path's `handleMessage` (delivery.ts): the same logs,
 * notifications and idempotence. What the push path answers 2xx for is acked; what it answers 5xx for (the
 * handler rejects) is nacked, so that Pub/Sub redelivers it with the subscription's retry policy
 * and its dead-letter policy still ends the retries.
 *
 * Flow control: at most `maxMessages` messages of each subscription are in the handlers at once;
 * the stream pauses while the limit is reached. A stream that ends by itself (the subscription
 * does not exist yet, permissions) is opened again after a growing delay, so that an instance
 * started before its subscriptions exist begins pulling once they do.
 *
 * `stop()` (on SIGTERM/SIGINT, runtime/instance.ts) stops both streams at once, lets the messages
 * in the handlers finish and acks or nacks each, then resolves; a message still in a handler
 * when the drain time is over is nacked (Pub/Sub redelivers it: nothing is lost).
 */
import { defaults } from '../../sdk/defaults.js';
import { toLroError } from '../../sdk/errors.js';
import { log as defaultLog, type Logger } from '../../sdk/log.js';
import type { Listener, Messaging, ReceivedMessage } from '../../sdk/messaging.js';
import { handleMessage, type SubscriberServices } from './delivery.js';
import type { EventMessage } from './messages.js';

/** Which handler a subscription's messages go to. */
export type PullSource = 'events' | 'deadLetters';

export interface PullerOptions {
  messaging: Messaging;
  /** The events subscription and the dead-letter store subscription. */
  subscriptions: { events: string; deadLetterStore: string };
  /** The subscriber's services (built on the first message). */
  services: () => SubscriberServices;
  /** Messages of one subscription in the handlers at most (default defaults.pullMaxMessages). */
  maxMessages?: number;
  /** How long `stop()` waits for the messages in the handlers (default defaults.pullDrainMs). */
  drainTimeoutMs?: number;
  log?: Logger;
}

/** What one subscription's stream did so far (the status endpoint shows it). */
export interface PullStreamStatus {
  subscription: string;
  open: boolean;
  inFlight: number;
  acked: number;
  nacked: number;
  /** The last stream failure, if the stream is not open. */
  lastError?: string;
}

export interface PullerStatus {
  state: 'pulling' | 'stopping' | 'stopped';
  maxMessages: number;
  events: PullStreamStatus;
  deadLetters: PullStreamStatus;
}

class PullStream {
  private listener: Listener | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs: number = defaults.listenerRecreateInitialMs;
  private stopped = false;
  readonly status: PullStreamStatus;

  constructor(
    private readonly source: PullSource,
    subscription: string,
    private readonly options: Required<Omit<PullerOptions, 'subscriptions'>>,
  ) {
    this.status = { subscription, open: false, inFlight: 0, acked: 0, nacked: 0 };
  }

  open(): void {
    if (this.stopped) return;
    const { messaging, maxMessages, drainTimeoutMs, log } = this.options;
    const subscription = this.status.subscription;
    this.status.open = true;
    const listener = messaging.listen(
      subscription,
      (message) => void this.handle(message),
      (err) => {
        this.status.lastError = err.message;
        log.warn('pull subscriber stream failed', {
          subscription,
          error: toLroError(err),
        });
      },
      {
        maxMessages,
        drainTimeoutMs,
        onClosed: () => {
          if (this.listener !== listener) return;
          this.listener = undefined;
          this.status.open = false;
          this.reopenLater();
        },
      },
    );
    this.listener = listener;
  }

  private reopenLater(): void {
    if (this.stopped) return;
    const { log } = this.options;
    log.warn('pull subscriber stream ended; opening it again', {
      subscription: this.status.subscription,
      retryMs: this.retryMs,
      ...(this.status.lastError === undefined ? {} : { reason: this.status.lastError }),
    });
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.open();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, defaults.listenerRecreateMaxMs);
  }

  /** One message: handled as the push path would, then acked (done) or nacked (redeliver). */
  private async handle(received: ReceivedMessage): Promise<void> {
    this.status.inFlight++;
    this.retryMs = defaults.listenerRecreateInitialMs;
    delete this.status.lastError;
    const message: EventMessage = {
      data: received.data,
      attributes: received.attributes,
      messageId: received.id,
      publishTime: received.publishTime.toISOString(),
    };
    try {
      const services = this.options.services();
      await handleMessage(
        message,
        this.source === 'deadLetters',
        services,
        services.log ?? this.options.log,
      );
      received.ack();
      this.status.acked++;
    } catch (err) {
      // The handlers log why; this line says what became of the message.
      this.options.log.debug('message nacked for redelivery', {
        subscription: this.status.subscription,
        messageId: received.id,
        error: toLroError(err),
      });
      received.nack();
      this.status.nacked++;
    } finally {
      this.status.inFlight--;
    }
  }

  /** Stops pulling; resolves once the messages in the handlers are acked or nacked. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close();
    this.status.open = false;
  }
}

export class Puller {
  private readonly events: PullStream;
  private readonly deadLetters: PullStream;
  private state: PullerStatus['state'] = 'stopped';
  private stopping: Promise<void> | undefined;
  private readonly maxMessages: number;
  private readonly log: Logger;

  constructor(options: PullerOptions) {
    this.maxMessages = options.maxMessages ?? defaults.pullMaxMessages;
    this.log = options.log ?? defaultLog;
    const resolved = {
      messaging: options.messaging,
      services: options.services,
      maxMessages: this.maxMessages,
      drainTimeoutMs: options.drainTimeoutMs ?? defaults.pullDrainMs,
      log: this.log,
    };
    this.events = new PullStream('events', options.subscriptions.events, resolved);
    this.deadLetters = new PullStream(
      'deadLetters',
      options.subscriptions.deadLetterStore,
      resolved,
    );
  }

  /** Opens both streams. */
  start(): void {
    if (this.state !== 'stopped' || this.stopping) return;
    this.state = 'pulling';
    this.events.open();
    this.deadLetters.open();
    this.log.info('pull subscriber started', {
      events: this.events.status.subscription,
      deadLetters: this.deadLetters.status.subscription,
      maxMessages: this.maxMessages,
    });
  }

  /** Stops pulling and drains what is in the handlers; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      const inFlight = this.events.status.inFlight + this.deadLetters.status.inFlight;
      this.log.info('pull subscriber stopping', { inFlight });
      await Promise.allSettled([this.events.stop(), this.deadLetters.stop()]);
      this.state = 'stopped';
      this.log.info('pull subscriber stopped', {
        acked: this.events.status.acked + this.deadLetters.status.acked,
        nacked: this.events.status.nacked + this.deadLetters.status.nacked,
      });
    })();
    return this.stopping;
  }

  status(): PullerStatus {
    return {
      state: this.state,
      maxMessages: this.maxMessages,
      events: { ...this.events.status },
      deadLetters: { ...this.deadLetters.status },
    };
  }
}
