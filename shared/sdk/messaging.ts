/**
 * Pub/Sub, in the project's words: topics, push and pull subscriptions, publishing JSON and
 * listening. The only module that imports @google-cloud/pubsub.
 */

import { randomBytes } from 'node:crypto';
import {
  Duration,
  PubSub,
  type Subscription,
  SubscriptionCloseBehaviors,
  type Topic,
} from '@google-cloud/pubsub';
import { Code, grpcCode, LroError } from './errors.js';

/** Where Pub/Sub is: the project, and the emulator's `host:port` when one is used. */
export interface PubSubOptions {
  projectId: string;
  pubsubEmulatorHost?: string | undefined;
}

export interface PublishOptions {
  attributes?: Record<string, string>;
  /** Messages with one ordering key are delivered in order (the topic's publisher enables it). */
  orderingKey?: string;
}

export interface ReceivedMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: Date;
  ack(): void;
  nack(): void;
}

export interface PushSubscriptionOptions {
  /** Where Pub/Sub pushes; without it the subscription is a pull subscription (same policies). */
  pushEndpoint?: string | undefined;
  deadLetterTopic?: string;
  maxDeliveryAttempts?: number;
  minimumBackoffSeconds?: number;
  maximumBackoffSeconds?: number;
  ackDeadlineSeconds?: number;
  enableMessageOrdering?: boolean;
}

export interface PullSubscriptionOptions {
  /** The subscription is deleted by Pub/Sub after this long without activity. */
  expirationSeconds?: number;
  ackDeadlineSeconds?: number;
  messageRetentionSeconds?: number;
  /** Pub/Sub filter on attributes, e.g. `attributes.operation = "operations/x"`. */
  filter?: string;
}

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Messages handed to `onMessage` and not yet acked or nacked, at most (flow control). */
  maxMessages?: number;
  /**
   * With a value, `close()` stops the stream at once, then waits up to this long for the messages
   * handed out to be acked or nacked (and their acks sent) before it resolves; whatever is still
   * out then is nacked. Without, `close()` nacks what is out at once.
   */
  drainTimeoutMs?: number;
  /** Called when the stream ended by itself (a non-retryable error), not by `close()`. */
  onClosed?: () => void;
}

/**
 * Whether a client call failed because google-auth-library found no credentials at all (no
 * application default credentials, no metadata server): a plain Error without a gRPC code.
 */
function isMissingCredentials(err: unknown): boolean {
  return (
    err instanceof Error &&
    grpcCode(err) === undefined &&
    /Could not load the default credentials/i.test(err.message)
  );
}

/**
 * A client that talks to an emulator needs no credentials, yet the Google client libraries still
 * look for them once per process, probing for a GCE metadata server, which prints a
 * MetadataLookupWarning on any machine that is not on Google Cloud. Skip that probe
 * (METADATA_SERVER_DETECTION=none) when an emulator is used and the variable is not set already.
 */
export function skipMetadataServerProbe(): void {
  if (process.env.METADATA_SERVER_DETECTION === undefined) {
    process.env.METADATA_SERVER_DETECTION = 'none';
  }
}

/** Every publisher's settings: batches of up to 1 ms, ordering keys allowed. */
const PUBLISHER_OPTIONS = {
  batching: { maxMessages: 100, maxMilliseconds: 1 },
  messageOrdering: true,
};

/** Endpoints that answered (or are being asked), by project and address: see checkReachable. */
const reachedEndpoints = new Map<string, Promise<void>>();

export class Messaging {
  readonly pubsub: PubSub;
  private readonly topics = new Map<string, Topic>();

  constructor(config: PubSubOptions) {
    if (config.pubsubEmulatorHost || process.env.PUBSUB_EMULATOR_HOST) skipMetadataServerProbe();
    this.pubsub = new PubSub({
      projectId: config.projectId,
      ...(config.pubsubEmulatorHost
        ? { apiEndpoint: config.pubsubEmulatorHost, emulatorMode: true }
        : {}),
    });
  }

  /**
   * Where requests go: `host:port`, and whether it is an emulator (named by `pubsubEmulatorHost`,
   * or by PUBSUB_EMULATOR_HOST, which the client library reads when no host is given).
   */
  get endpoint(): { address: string; emulator: boolean } {
    const { servicePath, port } = this.pubsub.options;
    return {
      address: `${servicePath ?? 'pubsub.googleapis.com'}:${port ?? 443}`,
      emulator: this.pubsub.isEmulator,
    };
  }

  /**
   * Resolves once Pub/Sub answered one request about `topicName` (any answer counts, a refusal or
   * NOT_FOUND included: they come from Pub/Sub), or rejects within `timeoutMs` with an
   * UNAVAILABLE LroError saying which endpoint did not answer and what sets it. The client
   * library would otherwise retry an unreachable endpoint for a minute per call. A success is
   * remembered for the life of the process, per endpoint: a worker that opens a reporter (and a
   * Messaging) per task makes one such request in all, not one per task (the request is a
   * GetTopic, counted against the project's Pub/Sub administrator-operation quota). A failure is
   * not remembered.
   */
  checkReachable(topicName: string, timeoutMs: number): Promise<void> {
    const key = `${this.pubsub.projectId}@${this.endpoint.address}`;
    let reached = reachedEndpoints.get(key);
    if (!reached) {
      reached = this.probe(topicName, timeoutMs).catch((err: unknown) => {
        reachedEndpoints.delete(key);
        throw err;
      });
      reachedEndpoints.set(key, reached);
    }
    return reached;
  }

  private async probe(topicName: string, timeoutMs: number): Promise<void> {
    // Without credentials a call fails inside the client library, which also leaves a rejection
    // of its own unhandled (the process would exit on it): ask for credentials first.
    if (!this.pubsub.isEmulator) {
      try {
        await this.pubsub.auth.getClient();
      } catch (err) {
        if (isMissingCredentials(err)) throw this.noCredentials(err);
        // Anything else is for the request below to tell.
      }
    }
    let timer: NodeJS.Timeout | undefined;
    // The call's own timeout bounds its retries; the timer only guards against a library that
    // does not keep it (credentials lookup, for instance).
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs + 2_000);
    });
    let failure: unknown;
    try {
      const outcome = await Promise.race([
        this.pubsub
          .topic(topicName)
          .getMetadata({ timeout: timeoutMs })
          .then(
            () => 'answered' as const,
            (err: unknown) => {
              failure = err;
              if (isMissingCredentials(err)) return 'no credentials' as const;
              const code = grpcCode(err);
              return code === Code.UNAVAILABLE || code === Code.DEADLINE_EXCEEDED
                ? ('late' as const)
                : ('answered' as const);
            },
          ),
        late,
      ]);
      if (outcome === 'answered') return;
      if (outcome === 'no credentials') throw this.noCredentials(failure);
    } finally {
      clearTimeout(timer);
    }
    const { address, emulator } = this.endpoint;
    const seconds = `${Math.round(timeoutMs / 100) / 10} s`;
    throw new LroError(
      Code.UNAVAILABLE,
      emulator
        ? `Pub/Sub emulator at ${address} did not answer within ${seconds}: start it there, or set PUBSUB_EMULATOR_HOST (pubsubEmulatorHost in the config) to where it runs`
        : `Pub/Sub at ${address} did not answer within ${seconds}: check the network and proxy settings, or set PUBSUB_EMULATOR_HOST (pubsubEmulatorHost in the config) to use an emulator`,
      failure === undefined ? {} : { cause: failure },
    );
  }

  /** The one line a worker without credentials (and without an emulator) fails with. */
  private noCredentials(cause: unknown): LroError {
    return new LroError(
      Code.UNAUTHENTICATED,
      `no Google credentials for Pub/Sub at ${this.endpoint.address}: set PUBSUB_EMULATOR_HOST (pubsubEmulatorHost in the config) to use an emulator (127.0.0.1:8085 under npm start), or give credentials (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)`,
      { cause },
    );
  }

  /** Whether the topic exists; NOT_FOUND is false, other failures reject. */
  async topicExists(name: string, timeoutMs: number): Promise<boolean> {
    try {
      await this.pubsub.topic(name).getMetadata({ timeout: timeoutMs });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** A cached publisher for a topic, batching briefly and allowing ordering keys. */
  topic(name: string): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = this.pubsub.topic(name, PUBLISHER_OPTIONS);
      this.topics.set(name, topic);
    }
    return topic;
  }

  /**
   * Makes one publish that Pub/Sub refuses, through a publisher set up as `topic()`'s, so that the
   * publisher's code, the request's encoder and its first call are behind an instance before its
   * first real publish (an instance's warm-up): the message goes to a topic that does not exist,
   * named at random here (`lro-warm-up-` and 24 hexadecimal digits), so nothing is published and
   * Pub/Sub answers NOT_FOUND (PERMISSION_DENIED for an account that may publish only to its own
   * topics). Resolves when Pub/Sub answered so; rejects otherwise, and if the message was taken.
   */
  async warmPublisher(timeoutMs: number): Promise<void> {
    const name = `lro-warm-up-${randomBytes(12).toString('hex')}`;
    const topic = this.pubsub.topic(name, {
      ...PUBLISHER_OPTIONS,
      gaxOpts: { timeout: timeoutMs, retry: null },
    });
    try {
      await topic.publishMessage({ data: Buffer.from('{}'), orderingKey: 'lro-warm-up' });
    } catch (err) {
      const code = grpcCode(err);
      if (code === Code.NOT_FOUND || code === Code.PERMISSION_DENIED) return;
      throw err;
    } finally {
      await topic.flush().catch(() => undefined);
    }
    throw new LroError(Code.INTERNAL, `the warm-up's publish to ${name} was accepted`);
  }

  /** Publishes a JSON value (or raw bytes); resolves with the message ID once accepted. */
  async publish(topicName: string, data: unknown, options: PublishOptions = {}): Promise<string> {
    const buffer = Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data));
    const topic = this.topic(topicName);
    try {
      return await topic.publishMessage({
        data: buffer,
        ...(options.attributes ? { attributes: options.attributes } : {}),
        ...(options.orderingKey ? { orderingKey: options.orderingKey } : {}),
      });
    } catch (err) {
      // After a failed ordered publish the key is paused until resumed.
      if (options.orderingKey) topic.resumePublishing(options.orderingKey);
      throw err;
    }
  }

  async ensureTopic(name: string): Promise<void> {
    try {
      await this.pubsub.createTopic(name);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  async deleteTopic(name: string): Promise<void> {
    try {
      await this.pubsub.topic(name).delete();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async ensurePushSubscription(
    name: string,
    topicName: string,
    options: PushSubscriptionOptions,
  ): Promise<void> {
    const metadata = {
      // An empty push config makes (or turns an existing subscription into) a pull subscription.
      pushConfig: options.pushEndpoint === undefined ? {} : { pushEndpoint: options.pushEndpoint },
      ackDeadlineSeconds: options.ackDeadlineSeconds ?? 60,
      retryPolicy: {
        minimumBackoff: { seconds: options.minimumBackoffSeconds ?? 1 },
        maximumBackoff: { seconds: options.maximumBackoffSeconds ?? 60 },
      },
      ...(options.enableMessageOrdering ? { enableMessageOrdering: true } : {}),
      ...(options.deadLetterTopic
        ? {
            deadLetterPolicy: {
              deadLetterTopic: this.pubsub.topic(options.deadLetterTopic).name,
              maxDeliveryAttempts: options.maxDeliveryAttempts ?? 5,
            },
          }
        : {}),
    };
    try {
      await this.pubsub.topic(topicName).createSubscription(name, metadata);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Ordering is fixed when a subscription is created; Pub/Sub refuses to update it.
      const { enableMessageOrdering: _fixed, ...mutable } = metadata as typeof metadata & {
        enableMessageOrdering?: boolean;
      };
      await this.pubsub.subscription(name).setMetadata(mutable);
    }
  }

  async ensurePullSubscription(
    name: string,
    topicName: string,
    options: PullSubscriptionOptions = {},
  ): Promise<void> {
    const metadata = {
      ackDeadlineSeconds: options.ackDeadlineSeconds ?? 10,
      ...(options.expirationSeconds
        ? { expirationPolicy: { ttl: { seconds: options.expirationSeconds } } }
        : {}),
      ...(options.messageRetentionSeconds
        ? { messageRetentionDuration: { seconds: options.messageRetentionSeconds } }
        : {}),
      ...(options.filter ? { filter: options.filter } : {}),
    };
    try {
      await this.pubsub.topic(topicName).createSubscription(name, metadata);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  async deleteSubscription(name: string): Promise<void> {
    try {
      await this.pubsub.subscription(name).delete();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Streaming pull from a subscription. `onMessage` must ack or nack; `onError` hears stream
   * failures (a deleted subscription, for instance) after the client's own retries.
   */
  listen(
    subscriptionName: string,
    onMessage: (message: ReceivedMessage) => void,
    onError: (err: Error) => void = () => {},
    options: ListenOptions = {},
  ): Listener {
    const drain = options.drainTimeoutMs;
    const subscription: Subscription = this.pubsub.subscription(subscriptionName, {
      flowControl: { maxMessages: options.maxMessages ?? 1000, allowExcessMessages: false },
      ...(drain === undefined
        ? {}
        : {
            closeOptions: {
              behavior: SubscriptionCloseBehaviors.WaitForProcessing,
              timeout: Duration.from({ milliseconds: drain }),
            },
          }),
    });
    let closing = false;
    subscription.on('message', (m) => {
      onMessage({
        id: m.id,
        data: m.data,
        attributes: m.attributes ?? {},
        publishTime: new Date(m.publishTime.getTime()),
        ack: () => m.ack(),
        nack: () => m.nack(),
      });
    });
    subscription.on('error', onError);
    subscription.on('close', () => {
      if (!closing) options.onClosed?.();
    });
    return {
      close: async () => {
        closing = true;
        if (drain === undefined) subscription.removeAllListeners('message');
        // Closing before the listeners go: removing the last one starts a close of its own (which
        // nacks at once), and a second close() would then resolve without waiting for it.
        await subscription.close();
        subscription.removeAllListeners('message');
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.topics.values()].map((t) => t.flush().catch(() => undefined)));
    await this.pubsub.close();
  }
}

export function isAlreadyExists(err: unknown): boolean {
  return grpcCode(err) === 6;
}

export function isNotFound(err: unknown): boolean {
  return grpcCode(err) === 5;
}
