/**
 * Worker SDK: `OperationReporter` sends one operation's events (docs/contracts.md, contract 2) and
 * tells the worker when the operation's cancellation is requested.
 *
 *   const reporter = await OperationReporter.open({ config, operation: name });
 *   await reporter.progress({ '@type': '...', percent: 50 });
 *   if (reporter.signal.aborted) return reporter.fail(reporter.signal.reason);
 *   await reporter.succeed({ '@type': '...', url });
 *   await reporter.close();
 *
 * Publishing: each event gets a random `eventId` and an `emitTime` that strictly increases within
 * the reporter (so two reports in one millisecond still order correctly), attributes `operation`
 * and `type`, and the operation name as ordering key. It is validated against the event schema
 * before it leaves the process, and a call resolves with the message ID only once Pub/Sub accepted
 * it; transient publish failures are retried with capped exponential backoff and jitter. The
 * terminal event carries the last reported metadata, so the final state does not depend on the
 * order in which Pub/Sub delivers.
 *
 * Progress coalescing: every event is a push request, a Bigtable write and a notification, so a
 * reporter publishes at most one progress (metadata) event per `progressIntervalMs` (default 1 s;
 * 0 publishes every report). The first report after a quiet interval goes at once; reports within
 * the interval are held and only the latest is published when it ends (each held call resolves
 * with the message ID of the event that carried its metadata or a newer one). The terminal event
 * flushes what is held: it carries the latest metadata itself, so held progress costs no event of
 * its own; `close()` publishes what is still held.
 *
 * Heartbeats (docs/contracts.md, contract 5): while it is open and the operation not done, the
 * reporter publishes a `heartbeat` event whenever nothing else was published for
 * `heartbeatIntervalMs` (default 15 s; 0 turns them off), so an operation created with a
 * `heartbeatTimeout` stays alive exactly as long as its worker process does. Progress counts as a
 * heartbeat. Choose a timeout of at least three intervals, so that one lost or late heartbeat does
 * not end the operation. Each heartbeat costs one Pub/Sub message and one small Bigtable write.
 *
 * Reachability: before its listener and its first publish, a reporter checks that Pub/Sub answers
 * at all (one request per process and endpoint); when nothing answers within `connectTimeoutMs`
 * (default 10 s), `open()` and publishing reject with an UNAVAILABLE LroError that names the
 * endpoint and PUBSUB_EMULATOR_HOST, rather than retrying for minutes. Once Pub/Sub answered,
 * publish failures are retried as described above.
 *
 * Cancellation: `signal` aborts (reason: an LroError CANCELLED) when the API announces a
 * cancellation request for the operation on the notifications topic. All reporters of a process
 * share one listener: a pull subscription filtered on `attributes.type = "cancelRequested"` with an
 * expiration policy (a crashed process leaves nothing behind for long), created on the first
 * reporter and deleted with the last. A subscription only sees messages published after it
 * exists, and a notification can be lost, so a polling fallback can be given (`pollCancellation`):
 * `cancellationFromStore(store)` for workers with Bigtable access (reads `cancelRequestTime`), or
 * `cancellationFromApi(baseUrl)` for workers elsewhere (reads the `x-lro-cancel-requested` header
 * of GET). It runs once at start and then every `cancelPollIntervalMs`. Without it, workers that
 * only have Pub/Sub rely on the notification alone: open the reporter before starting the work.
 *
 * Permissions: publishing needs roles/pubsub.publisher on the events topic. The listener needs
 * pubsub.subscriptions.create/get/consume/delete in the project and roles/pubsub.subscriber on the
 * notifications topic; where it cannot be created (the deployed worker account may not), `open()`
 * still succeeds: one warning per process, and cancellation relies on `pollCancellation` alone
 * (nothing when none is given). `cancellationFromApi` needs roles/run.invoker on the API.
 */
import { randomUUID } from 'node:crypto';
import {
  type CancellationCheck,
  CancellationWatcher,
  cancellationFromApi,
  cancellationFromStore,
  listenerUnavailable,
} from './cancellation.js';
import { defaults } from './defaults.js';
import { Code, failedPrecondition, invalidArgument, isLroError, LroError } from './errors.js';
import { checkEvent, eventAttributes, type WorkerEvent } from './events.js';
import { type Failure, isRetryablePublishCode, publishErrorCode, statusOf } from './failures.js';
import { log as defaultLog, type Logger } from './log.js';
import { Messaging, type PubSubOptions } from './messaging.js';
import { type Any, AnySchema, describeIssues, toOperationName } from './model.js';

export {
  type CancellationCheck,
  cancellationFromApi,
  cancellationFromStore,
  type Failure,
  statusOf,
};

export interface ReporterConfig extends PubSubOptions {
  topics: { events: string; notifications: string };
}

export interface ReporterOptions {
  /** The operation: its name (`operations/{id}`) or ID. */
  operation: string;
  /** Topics and Pub/Sub endpoint. Either this or `messaging` plus `topics`. */
  config?: ReporterConfig;
  /** A Messaging to share between reporters (not closed by `close()`). */
  messaging?: Messaging;
  /** Override the config's topics. `notifications: false` disables the cancellation listener. */
  topics?: { events?: string; notifications?: string | false };
  /** Polling fallback for cancellation; none by default. */
  pollCancellation?: CancellationCheck;
  /** Interval of the polling fallback (default defaults.cancelPollIntervalMs). */
  cancelPollIntervalMs?: number;
  /** Publish attempts before giving up (default defaults.publishAttemptsMax). */
  publishAttempts?: number;
  /**
   * A heartbeat is published when nothing else was for this long (default
   * defaults.heartbeatIntervalMs, 15 s); 0 sends none.
   */
  heartbeatIntervalMs?: number;
  /**
   * At most one progress event per this many milliseconds, the latest report winning (default
   * defaults.progressIntervalMs, 1 s); 0 publishes every report.
   */
  progressIntervalMs?: number;
  /**
   * How long Pub/Sub may take to answer a first request before `open()` and publishing fail
   * UNAVAILABLE (default defaults.pubsubConnectTimeoutMs, 10 s).
   */
  connectTimeoutMs?: number;
  log?: Logger;
}

interface HeldProgress {
  resolve(messageId: string): void;
  reject(err: unknown): void;
}

/** Settles held progress calls with the outcome of the event that carries their metadata. */
function settleHeld(held: HeldProgress[], sent: Promise<string>): Promise<string> {
  sent.then(
    (id) => {
      for (const h of held) h.resolve(id);
    },
    (err: unknown) => {
      for (const h of held) h.reject(err);
    },
  );
  return sent;
}

/** A failure as the `failed` event carries it: a Status, an LroError, or any Error. */

export class OperationReporter {
  readonly operation: string;
  private readonly messaging: Messaging;
  private readonly ownsMessaging: boolean;
  private readonly eventsTopic: string;
  private readonly publishAttempts: number;
  private readonly connectTimeoutMs: number;
  private unreachable: LroError | undefined;
  private readonly log: Logger;
  private readonly controller = new AbortController();
  private readonly watch: Promise<void>;
  private unwatch: (() => Promise<void>) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly heartbeatIntervalMs: number;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastEmitMs = 0;
  private lastMetadata: Any | undefined;
  private readonly progressIntervalMs: number;
  /** When the last progress event was published (performance.now()). */
  private lastProgressAt = Number.NEGATIVE_INFINITY;
  /** Progress reports held until the interval ends (their metadata is lastMetadata). */
  private held: HeldProgress[] = [];
  private progressTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private closed = false;
  private isListening = false;

  constructor(options: ReporterOptions) {
    this.operation = toOperationName(options.operation);
    this.log = options.log ?? defaultLog;
    this.publishAttempts = options.publishAttempts ?? defaults.publishAttemptsMax;
    this.connectTimeoutMs = options.connectTimeoutMs ?? defaults.pubsubConnectTimeoutMs;
    if (!(this.connectTimeoutMs > 0)) {
      throw invalidArgument('connectTimeoutMs must be a positive number');
    }
    if (options.messaging) {
      this.messaging = options.messaging;
      this.ownsMessaging = false;
    } else if (options.config) {
      this.messaging = new Messaging(options.config);
      this.ownsMessaging = true;
    } else {
      throw invalidArgument('OperationReporter needs a config or a messaging');
    }
    const events = options.topics?.events ?? options.config?.topics.events;
    if (!events) throw invalidArgument('OperationReporter needs the events topic');
    this.eventsTopic = events;

    const notifications =
      options.topics?.notifications === undefined
        ? options.config?.topics.notifications
        : options.topics.notifications || undefined;
    const pollIntervalMs = options.cancelPollIntervalMs ?? defaults.cancelPollIntervalMs;
    const reached = this.messaging.checkReachable(events, this.connectTimeoutMs).then(
      () => true,
      (err: unknown) => {
        this.unreachable = isLroError(err) ? err : new LroError(Code.UNAVAILABLE, String(err));
        return false;
      },
    );
    this.watch = reached.then(async (ok) => {
      if (!ok || !notifications) return;
      try {
        await this.startWatching(notifications);
        this.isListening = true;
      } catch (err) {
        listenerUnavailable(this.log, notifications, err, {
          operation: this.operation,
          pollIntervalMs: options.pollCancellation ? pollIntervalMs : undefined,
        });
      }
    });
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? defaults.heartbeatIntervalMs;
    if (!(this.heartbeatIntervalMs >= 0)) {
      throw invalidArgument('heartbeatIntervalMs must be a non-negative number');
    }
    this.progressIntervalMs = options.progressIntervalMs ?? defaults.progressIntervalMs;
    if (!(this.progressIntervalMs >= 0)) {
      throw invalidArgument('progressIntervalMs must be a non-negative number');
    }
    this.scheduleHeartbeat();
    if (options.pollCancellation) this.startPolling(options.pollCancellation, pollIntervalMs);
  }

  /**
   * A reporter whose cancellation listener is ready (see `ready()`). Rejects (UNAVAILABLE) when
   * Pub/Sub does not answer within `connectTimeoutMs`.
   */
  static async open(options: ReporterOptions): Promise<OperationReporter> {
    const reporter = new OperationReporter(options);
    await reporter.ready();
    const unreachable = reporter.unreachable;
    if (unreachable) {
      // Closing talks to Pub/Sub too, and fails the same way: the first error is the one to tell.
      await reporter.close().catch(() => {});
      throw unreachable;
    }
    return reporter;
  }

  /** Aborts when cancellation of the operation is requested; the reason is a CANCELLED LroError. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Resolves once the cancellation listener receives notifications published from now on, or once
   * it is known that it cannot be created (see `listening`): it never rejects, the reporter then
   * relies on `pollCancellation` alone.
   */
  ready(): Promise<void> {
    return this.watch;
  }

  /** Whether the cancellation listener runs (false before `ready()` and when it could not start). */
  get listening(): boolean {
    return this.isListening;
  }

  /** Publishes progress: new metadata for the running operation. */
  async progress(metadata: Any): Promise<string> {
    this.assertRunning();
    const checked = AnySchema.safeParse(metadata);
    if (!checked.success)
      throw invalidArgument(`invalid metadata: ${describeIssues(checked.error)}`);
    this.lastMetadata = checked.data;
    const now = performance.now();
    const wait = this.lastProgressAt + this.progressIntervalMs - now;
    if (this.held.length === 0 && wait <= 0) {
      this.lastProgressAt = now;
      return this.send({ ...this.envelope(), type: 'metadata', metadata: checked.data });
    }
    return new Promise<string>((resolve, reject) => {
      this.held.push({ resolve, reject });
      this.progressTimer ??= setTimeout(() => void this.flushProgress(), Math.max(0, wait));
    });
  }

  /** Publishes the latest held progress, if any; its callers get that event's message ID. */
  private async flushProgress(): Promise<void> {
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    const held = this.takeHeld();
    const metadata = this.lastMetadata;
    if (held.length === 0 || metadata === undefined) return;
    this.lastProgressAt = performance.now();
    await settleHeld(held, this.send({ ...this.envelope(), type: 'metadata', metadata }));
  }

  /** The held progress calls, which the caller settles. */
  private takeHeld(): HeldProgress[] {
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    const held = this.held;
    this.held = [];
    return held;
  }

  /**
   * Publishes success. Carries `options.metadata`, or else the last reported metadata, as the
   * final metadata.
   */
  async succeed(response?: Any, options: { metadata?: Any } = {}): Promise<string> {
    this.assertRunning();
    this.finished = true;
    const metadata = options.metadata ?? this.lastMetadata;
    // Held progress is carried by the terminal event (its metadata is the latest).
    const held = this.takeHeld();
    return settleHeld(
      held,
      this.send({
        ...this.envelope(),
        type: 'succeeded',
        ...(metadata === undefined ? {} : { metadata }),
        ...(response === undefined ? {} : { response }),
      }),
    );
  }

  /**
   * Publishes failure. An LroError keeps its code and details; any other Error becomes INTERNAL
   * with its message; a Status is sent as it is (its code must not be 0).
   */
  async fail(failure: Failure, options: { metadata?: Any } = {}): Promise<string> {
    this.assertRunning();
    const error = statusOf(failure);
    this.finished = true;
    const metadata = options.metadata ?? this.lastMetadata;
    const held = this.takeHeld();
    return settleHeld(
      held,
      this.send({
        ...this.envelope(),
        type: 'failed',
        error,
        ...(metadata === undefined ? {} : { metadata }),
      }),
    );
  }

  /** Ends the operation as cancelled (CANCELLED), e.g. after `signal` aborted. */
  async cancelled(message = 'operation cancelled'): Promise<string> {
    return this.fail({ code: Code.CANCELLED, message });
  }

  /** Stops listening and polling; closes the Messaging if the reporter created it. */
  async close(): Promise<void> {
    if (this.closed) return;
    // What is still held is published first (the operation may run on without this reporter).
    await this.flushProgress().catch(() => undefined);
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    await this.watch.catch(() => undefined);
    await this.unwatch?.();
    if (this.ownsMessaging) await this.messaging.close();
  }

  private assertRunning() {
    if (this.closed) throw failedPrecondition(`reporter of ${this.operation} is closed`);
    if (this.finished) {
      throw failedPrecondition(`${this.operation} was already reported succeeded or failed`);
    }
  }

  private envelope() {
    const now = Math.max(Date.now(), this.lastEmitMs + 1);
    this.lastEmitMs = now;
    return {
      version: 1 as const,
      operation: this.operation,
      eventId: randomUUID(),
      emitTime: new Date(now).toISOString(),
    };
  }

  /** (Re)arms the heartbeat timer: called at start and whenever an event is published. */
  private scheduleHeartbeat() {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (this.heartbeatIntervalMs === 0 || this.closed || this.finished) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = undefined;
      if (this.closed || this.finished) return;
      this.send({ ...this.envelope(), type: 'heartbeat' }).catch((err: unknown) => {
        this.log.warn('heartbeat not published', {
          operation: this.operation,
          error: err instanceof Error ? err : String(err),
        });
      });
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async send(event: WorkerEvent): Promise<string> {
    this.scheduleHeartbeat();
    const checked = checkEvent(event);
    if (!checked.ok) throw invalidArgument(`invalid event: ${checked.reason}`);
    const options = { attributes: eventAttributes(checked.event), orderingKey: this.operation };
    // Fails within connectTimeoutMs when Pub/Sub never answered (instantly once it did).
    await this.messaging.checkReachable(this.eventsTopic, this.connectTimeoutMs);
    let delay: number = defaults.publishRetryInitialMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.messaging.publish(this.eventsTopic, checked.event, options);
      } catch (err) {
        const code = publishErrorCode(err);
        if (!isRetryablePublishCode(code) || attempt >= this.publishAttempts) {
          throw new LroError(code, `publishing ${event.type} of ${this.operation} failed`, {
            cause: err,
          });
        }
        this.log.warn('publish failed; retrying', {
          operation: this.operation,
          attempt,
          error: err instanceof Error ? err : String(err),
        });
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
        delay = Math.min(delay * 2, defaults.publishRetryMaxMs);
      }
    }
  }

  private abort() {
    if (this.controller.signal.aborted) return;
    this.log.info('cancellation requested', { operation: this.operation });
    this.controller.abort(
      new LroError(Code.CANCELLED, `cancellation of ${this.operation} requested`),
    );
    if (this.pollTimer) clearTimeout(this.pollTimer);
  }

  private async startWatching(topic: string): Promise<void> {
    const watcher = CancellationWatcher.for(this.messaging, topic, this.log);
    this.unwatch = await watcher.add(this.operation, () => this.abort());
  }

  private startPolling(check: CancellationCheck, intervalMs: number) {
    const poll = async () => {
      this.pollTimer = undefined;
      if (this.closed || this.signal.aborted) return;
      try {
        if (await check(this.operation)) this.abort();
      } catch (err) {
        this.log.warn('cancellation poll failed', {
          operation: this.operation,
          error: err instanceof Error ? err : String(err),
        });
      }
      if (!this.closed && !this.signal.aborted) {
        this.pollTimer = setTimeout(poll, intervalMs);
        this.pollTimer.unref();
      }
    };
    void poll();
  }
}
