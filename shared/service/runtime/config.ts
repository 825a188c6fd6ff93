/**
 * Configuration, parsed once from the environment into a frozen object. Nothing else in the
 * project reads `process.env`; tests and scripts pass their own env to `loadConfig`.
 */
import { z } from 'zod';
import { DeadlineDefaultSchema, HeartbeatTimeoutSchema } from '../../sdk/deadlines.js';
import { defaults } from '../../sdk/defaults.js';
import { DurationMs, formatDuration } from '../../sdk/duration.js';

/**
 * Suffix of the events topic's subscription to the subscriber (`{events topic}-subscriber`), the
 * name the local stack gives it and the pull runner reads unless LRO_EVENTS_SUBSCRIPTION names
 * another.
 */
export const EVENTS_SUBSCRIPTION_SUFFIX = '-subscriber';

/** Suffix of the dead-letter topic's subscription that stores dead letters (`{topic}-store`). */
export const DEAD_LETTER_STORE_SUFFIX = '-store';

const name = z.string().regex(/^[A-Za-z][A-Za-z0-9._~%+-]{0,254}$/, 'not a valid resource name');
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port');
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable the services read, with its default. */
export const ConfigEnvSchema = z.object({
  GOOGLE_CLOUD_PROJECT: z.string().min(1).default('lro-local'),
  LRO_BIGTABLE_INSTANCE: name.default('lro'),
  LRO_BIGTABLE_TABLE: name.default('operations'),
  /** App profile with single-cluster routing and transactional writes (CheckAndMutateRow). */
  LRO_BIGTABLE_APP_PROFILE: z.string().min(1).optional(),
  /** Row-key prefix, so that several services can share one table. */
  LRO_ROW_KEY_PREFIX: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_.:/-]*$/, 'letters, digits and _ . : / - only')
    .default(''),
  LRO_EVENTS_TOPIC: name.default('lro-events'),
  LRO_NOTIFICATIONS_TOPIC: name.default('lro-notifications'),
  LRO_DEAD_LETTER_TOPIC: name.default('lro-events-dead-letter'),
  /** Topic of the wake-ups (docs/contracts.md, contract 10): one per ended operation, for waits. */
  LRO_WAKEUPS_TOPIC: name.default('lro-wakeups'),
  /**
   * The events topic's subscription that the pull subscriber (`subscriberPull`) reads; default
   * `{LRO_EVENTS_TOPIC}-subscriber`. Its dead-letter store subscription is always
   * `{LRO_DEAD_LETTER_TOPIC}-store`. The push subscriber does not read it.
   */
  LRO_EVENTS_SUBSCRIPTION: name.optional(),
  /** How long finished operations are kept (a Duration such as "2592000s"). */
  LRO_RETENTION: DurationMs.prefault(formatDuration(defaults.retentionSeconds * 1000)),
  /** Wait timeout when the request gives none, and the cap of any requested one. */
  LRO_WAIT_TIMEOUT_DEFAULT: DurationMs.prefault(formatDuration(defaults.waitTimeoutDefaultMs)),
  LRO_WAIT_TIMEOUT_MAX: DurationMs.prefault(formatDuration(defaults.waitTimeoutMaxMs)),
  /** Whether waits follow the wake-up topic (polling alone when false). */
  LRO_WAIT_NOTIFICATIONS: flag.default(true),
  /** A wait's first safety-net poll while notifications flow (later ones back off from it). */
  LRO_WAIT_SAFETY_POLL: DurationMs.prefault(formatDuration(defaults.waitPollNotifiedInitialMs)),
  /**
   * How `:watch` streams learn of changes: `subscription` (an instance serving a watch opens its
   * own subscription on the notifications topic, deleted when its last watch ends) or `poll`
   * (every watch reads its row each second; for loads where full notifications cost more than
   * they save, docs/capacity.md).
   */
  LRO_WATCH_MODE: z.enum(['subscription', 'poll']).default('subscription'),
  /** Deadline of operations created without one, counted from creation (unset: none). */
  LRO_DEADLINE_DEFAULT: DeadlineDefaultSchema.optional(),
  /** Heartbeat timeout of operations created without one (unset: none). */
  LRO_HEARTBEAT_TIMEOUT_DEFAULT: HeartbeatTimeoutSchema.optional(),
  /** Key that signs page tokens; any stable secret shared by the API's instances. */
  LRO_PAGE_TOKEN_KEY: z.string().min(1).optional(),
  /** Bytes of one list, children or batchWait response at most (64 KiB to 30 MiB). */
  LRO_RESPONSE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(30 * 1024 * 1024)
    .default(defaults.responseMaxBytes),
  /**
   * How long an instance may spend on its first calls to Bigtable and Pub/Sub before it accepts
   * requests (shared/service/runtime/warm-up.ts); "0s" turns the warm-up off.
   */
  LRO_WARM_UP_TIMEOUT: DurationMs.prefault('5s'),
  /** The function an instance serves, set by the platform (locally: the framework's --target). */
  FUNCTION_TARGET: z.string().optional(),
  PORT: z.coerce.number().int().min(1).max(65535).default(8080),
  BIGTABLE_EMULATOR_HOST: hostPort.optional(),
  PUBSUB_EMULATOR_HOST: hostPort.optional(),
});

export type ConfigEnv = z.input<typeof ConfigEnvSchema>;

export interface Config {
  readonly projectId: string;
  readonly bigtable: {
    readonly instance: string;
    readonly table: string;
    readonly appProfile: string | undefined;
    readonly rowKeyPrefix: string;
    readonly emulatorHost: string | undefined;
  };
  readonly topics: {
    readonly events: string;
    readonly notifications: string;
    readonly deadLetter: string;
    readonly wakeups: string;
  };
  /** The subscriptions the pull subscriber reads (the push subscriber is pushed to instead). */
  readonly subscriptions: {
    readonly events: string;
    readonly deadLetterStore: string;
  };
  readonly pubsubEmulatorHost: string | undefined;
  readonly retentionMs: number;
  readonly wait: {
    readonly defaultTimeoutMs: number;
    readonly maxTimeoutMs: number;
    readonly notifications: boolean;
    readonly safetyPollMs: number;
    readonly watchMode: 'subscription' | 'poll';
  };
  readonly pageTokenKey: string;
  /** JSON bytes of one list, children or batchWait response at most. */
  readonly responseMaxBytes: number;
  readonly port: number;
  /** Bound of the warm-up before an instance accepts requests; 0 when off. */
  readonly warmUpTimeoutMs: number;
  readonly functionTarget: string | undefined;
  /** Limits given to operations created without their own (docs/contracts.md, contract 5). */
  readonly limits: {
    readonly deadlineDefaultMs: number | undefined;
    readonly heartbeatTimeoutDefaultMs: number | undefined;
  };
}

/** Names of the variables the config reads (for the Terraform checks and the docs). */
export const configVariableNames = Object.keys(ConfigEnvSchema.shape) as (keyof ConfigEnv)[];

/** Parses and validates the environment; throws with every problem listed. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of configVariableNames) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const parsed = ConfigEnvSchema.safeParse(picked);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  if (e.LRO_WAIT_TIMEOUT_DEFAULT > e.LRO_WAIT_TIMEOUT_MAX) {
    throw new Error('invalid configuration: LRO_WAIT_TIMEOUT_DEFAULT exceeds LRO_WAIT_TIMEOUT_MAX');
  }
  return deepFreeze({
    projectId: e.GOOGLE_CLOUD_PROJECT,
    bigtable: {
      instance: e.LRO_BIGTABLE_INSTANCE,
      table: e.LRO_BIGTABLE_TABLE,
      appProfile: e.LRO_BIGTABLE_APP_PROFILE,
      rowKeyPrefix: e.LRO_ROW_KEY_PREFIX,
      emulatorHost: e.BIGTABLE_EMULATOR_HOST,
    },
    topics: {
      events: e.LRO_EVENTS_TOPIC,
      notifications: e.LRO_NOTIFICATIONS_TOPIC,
      deadLetter: e.LRO_DEAD_LETTER_TOPIC,
      wakeups: e.LRO_WAKEUPS_TOPIC,
    },
    subscriptions: {
      events: e.LRO_EVENTS_SUBSCRIPTION ?? `${e.LRO_EVENTS_TOPIC}${EVENTS_SUBSCRIPTION_SUFFIX}`,
      deadLetterStore: `${e.LRO_DEAD_LETTER_TOPIC}${DEAD_LETTER_STORE_SUFFIX}`,
    },
    pubsubEmulatorHost: e.PUBSUB_EMULATOR_HOST,
    retentionMs: e.LRO_RETENTION,
    wait: {
      defaultTimeoutMs: e.LRO_WAIT_TIMEOUT_DEFAULT,
      maxTimeoutMs: e.LRO_WAIT_TIMEOUT_MAX,
      notifications: e.LRO_WAIT_NOTIFICATIONS,
      safetyPollMs: e.LRO_WAIT_SAFETY_POLL,
      watchMode: e.LRO_WATCH_MODE,
    },
    pageTokenKey:
      e.LRO_PAGE_TOKEN_KEY ??
      `lro:${e.GOOGLE_CLOUD_PROJECT}/${e.LRO_BIGTABLE_INSTANCE}/${e.LRO_BIGTABLE_TABLE}/${e.LRO_ROW_KEY_PREFIX}`,
    responseMaxBytes: e.LRO_RESPONSE_MAX_BYTES,
    port: e.PORT,
    warmUpTimeoutMs: e.LRO_WARM_UP_TIMEOUT,
    functionTarget: e.FUNCTION_TARGET,
    limits: {
      deadlineDefaultMs: e.LRO_DEADLINE_DEFAULT,
      heartbeatTimeoutDefaultMs: e.LRO_HEARTBEAT_TIMEOUT_DEFAULT,
    },
  });
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object') deepFreeze(child);
  }
  return Object.freeze(value);
}
