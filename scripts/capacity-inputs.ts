/**
 * The inputs of the capacity model (scripts/capacity-model.ts): the load, the CPU costs `npm run
 * bench` measures (with the defaults used without a bench.json), the sizes and platform behaviour
 * it assumes, and list prices. Every constant that is not measured is named here with where it
 * comes from; prices carry the date they were read and their page.
 */
import type { ReadableBenchResults } from '../bench/results.js';

/** The load. */
export interface Load {
  operationsPerMinute: number;
  /** Events a worker publishes per operation, the terminal one included. */
  eventsPerOperation: number;
  /** WaitOperation requests per operation (each a long poll of up to waitSeconds). */
  waitsPerOperation: number;
  /** Other API requests per operation besides create and the waits (gets, lists). */
  getsPerOperation: number;
  /** API instances; undefined: as many as the CPU and the waits in flight need. */
  apiInstances?: number | undefined;
  /** Share of events that end in the dead-letter topic. */
  deadLetterFraction: number;
  /**
   * How API instances learn of changes. `thin-terminal` (the service): every instance follows the
   * wake-up topic, one bodiless message per ended operation, and reads the row once on it. `all`:
   * the earlier design, every instance receiving every full notification.
   */
  wakeups: 'all' | 'thin-terminal';
  /**
   * Whether the routine INFO lines and non-5xx request logs are excluded from storage
   * (infra/monitoring `exclude_routine_logs`, on by default); absent: false.
   */
  logExclusions?: boolean | undefined;
  /**
   * The worker SDK's progress interval (seconds): a worker publishes at most one progress event
   * per interval over an operation of `operationSeconds`; absent: every report is published.
   */
  progressIntervalSeconds?: number | undefined;
  /**
   * How events reach the subscriber: `push` (the default deployment: one billed request per
   * event) or `pull` (Terraform's `subscriber_delivery = "pull"`, docs/capacity.md: always-on
   * instances streaming-pull the events, billed per instance, no request fees); absent: push.
   */
  subscriberDelivery?: 'push' | 'pull' | undefined;
}

export const DEFAULT_LOAD: Load = {
  operationsPerMinute: 1000,
  eventsPerOperation: 5,
  waitsPerOperation: 1,
  getsPerOperation: 1,
  apiInstances: undefined,
  deadLetterFraction: 0.001,
  wakeups: 'thin-terminal',
  logExclusions: true,
  progressIntervalSeconds: 1,
};

/** CPU costs, from bench-results/bench.json when present. */
export interface CpuCosts {
  /** Subscriber CPU per event (push, Bigtable write, notification publish). */
  subscriberMsPerEvent: number;
  /** API CPU per plain request (get, create). */
  apiMsPerRequest: number;
  /** API CPU per wait request, its Bigtable read after the wake-up included. */
  apiMsPerWait: number;
  /** API CPU per notification received on an instance's subscription (parse, match, ack). */
  apiMsPerNotification: number;
  /** API CPU per wake-up received (parse, match, ack); absent: as a notification. */
  apiMsPerWakeup?: number | undefined;
  /**
   * Bigtable reads per wait, as the API counts them (`x-lro-bigtable-reads`) with wake-ups: the
   * first read, the read on the wake-up, and the safety-net polls.
   */
  bigtableReadsPerWait: number;
  /** Where the figures come from. */
  source: string;
}

/**
 * Defaults from measured figures (2-core machine, emulators): an earlier `npm run bench` run,
 * subscriber 3.4 ms CPU per event and 1.09 Bigtable reads per wait on full notifications (the
 * first read and the safety-net polls), so 2.09 with the wake-up's read; `npm run bench:fanout`
 * (2026-11-29, two runs: 0.218 and 0.173 ms), 0.2 ms of API CPU per notification received;
 * `npm run bench:fanout` (2026-12-07, two runs: 0.1525 and 0.1528 ms per wake-up, 0.124 and
 * 0.113 ms per notification in the same runs), 0.15 ms per wake-up. The API's CPU per request is taken
 * as the inverse of the measured GET throughput on one busy core (553 req/s: 1.8 ms) and rounded
 * to 2 ms. The CPU per wait is not measured on its own: ASSUMED 3 ms (a request, a Bigtable read
 * and a response).
 */
export const DEFAULT_CPU: CpuCosts = {
  subscriberMsPerEvent: 3.4,
  apiMsPerRequest: 2,
  apiMsPerWait: 3,
  apiMsPerNotification: 0.2,
  apiMsPerWakeup: 0.15,
  bigtableReadsPerWait: 2.09,
  source: 'measured defaults (an earlier npm run bench, bench:fanout) and named assumptions',
};

/** Sizes, platform behaviour and limits the model assumes. */
export const ASSUMPTIONS = {
  /** Worker event as published: JSON body ~350 B, attributes, timestamp, message ID. */
  eventBytes: 500,
  /** Notification: the Operation JSON with metadata and response, attributes. */
  notificationBytes: 800,
  /** Thin wake-up message: no body, attributes operation and type, timestamp, message ID. */
  wakeupBytes: 120,
  /** Pub/Sub bills at least 1000 bytes per publish, push or pull request (pricing page). */
  pubsubMinBilledBytes: 1000,
  /**
   * ASSUMED: streaming-pull deliveries are batched, so billed at their size (the 1000-byte
   * minimum is per request, and the page names publish, push and pull requests).
   */
  streamingPullBilledAtSize: true,
  /** Cloud Run scales out at about 60 % CPU of an instance (its autoscaling target). */
  cpuTargetUtilisation: 0.6,
  apiVcpuPerInstance: 1,
  apiMemoryGiB: 1,
  /** terraform.tf defaults. */
  apiConcurrency: 1000,
  apiMaxInstances: 20,
  subscriberVcpuPerInstance: 1,
  subscriberMemoryGiB: 0.5,
  subscriberConcurrency: 80,
  subscriberMaxInstances: 50,
  /** How long one wait request is held (the default wait timeout is 30 s). */
  waitSeconds: 20,
  /** How long one push delivery keeps the subscriber busy (write + publish, cloud latencies). */
  pushSeconds: 0.03,
  /**
   * ASSUMED: a Bigtable SSD node serves about 10,000 simple reads or writes a second (the
   * performance page's order of magnitude for 1 KB rows); a conditional write
   * (CheckAndMutateRow) counts as a read plus a write; nodes are sized for 70 % CPU.
   */
  bigtableOpsPerNode: 10_000,
  bigtableTargetUtilisation: 0.7,
  /** SSD storage per node (Bigtable's storage-per-node limit). */
  bigtableStorageGiBPerNode: 5 * 1024,
  /** How long an operation runs (for progress coalescing: reports spread over this time). */
  operationSeconds: 20,
  /**
   * Of the measured `bigtableReadsPerWait`, the read a woken wait makes on its wake-up (a wake-up
   * has no body); the earlier design (`wakeups: 'all'`) took the state from the notification
   * instead, so its waits read that much less.
   */
  wakeupReadsPerWait: 1,
  /** Stored bytes per operation row (state, metadata, response) and its index cells. */
  bytesPerOperationStored: 2000,
  retentionDays: 30,
  /** Log entries as Cloud Logging stores them (payload, resource labels, timestamps). */
  appLogEntryBytes: 700,
  /** The platform's request log entry for every request (push deliveries included). */
  requestLogEntryBytes: 1000,
  secondsPerMonth: 730 * 3600,
} as const;

/** The same keys with their literal types widened, so that a test or a caller can vary them. */
type Widened<T> = {
  -readonly [K in keyof T]: T[K] extends number ? number : T[K] extends boolean ? boolean : string;
};

export type Assumptions = Widened<typeof ASSUMPTIONS>;

/**
 * List prices in USD. Read 2026-11-29 through the project's page search; Cloud Run and Pub/Sub
 * figures are on the pages named, the Bigtable figures could not be read from the stored pricing
 * page (its tables are rendered by script) and are ASSUMED at the long-published us-central1
 * list prices; check them for the region you deploy to.
 */
export const PRICES = {
  date: '2026-11-29',
  /** https://cloud.google.com/run/pricing, tier 1, CPU allocated during requests only. */
  cloudRunVcpuSecond: 0.000024,
  cloudRunGiBSecond: 0.0000025,
  cloudRunPerMillionRequests: 0.4,
  /**
   * ASSUMED, same page: instance-based billing (CPU always allocated), tier 1, per vCPU-second
   * and GiB-second; only the pull-based subscriber uses it.
   */
  cloudRunInstanceVcpuSecond: 0.000018,
  cloudRunInstanceGiBSecond: 0.000002,
  /** https://cloud.google.com/pubsub/pricing, throughput (publish and delivery), per TiB. */
  pubsubPerTiB: 40,
  /** ASSUMED, https://cloud.google.com/bigtable/pricing: SSD node per hour, storage GiB-month. */
  bigtableNodeHour: 0.65,
  bigtableSsdGiBMonth: 0.17,
  /** https://cloud.google.com/stackdriver/pricing, Cloud Logging storage (ingestion) per GiB. */
  loggingPerGiB: 0.5,
} as const;

export type Prices = Widened<typeof PRICES>;

/**
 * CPU costs from a bench.json (npm run bench) decoded through its schema (bench/results.ts) and
 * fanout.json (npm run bench:fanout), falling back figure by figure to the defaults (a figure
 * missing, not measured, or not positive).
 */
export function cpuFromBench(
  bench: ReadableBenchResults | undefined,
  path: string,
  fanout?: unknown,
): CpuCosts {
  const f = (fanout ?? {}) as { apiMsPerNotification?: unknown; apiMsPerWakeup?: unknown };
  const b = bench ?? {};
  const positive = (v: unknown) =>
    typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
  const taken: string[] = [];
  const pick = (name: string, ...candidates: unknown[]) => {
    for (const c of candidates) {
      const v = positive(c);
      if (v !== undefined) {
        taken.push(name);
        return v;
      }
    }
    return undefined;
  };
  const subscriber = pick(
    'subscriberMsPerEvent',
    b.cpu?.subscriberMsPerEvent,
    b.events?.subscriberCpuMsPerEvent,
  );
  const request = pick('apiMsPerRequest', b.cpu?.apiMsPerGet);
  const wait = pick('apiMsPerWait', b.cpu?.apiMsPerWait);
  const notification = pick('apiMsPerNotification', f.apiMsPerNotification);
  const wakeup = pick('apiMsPerWakeup', f.apiMsPerWakeup);
  const reads = pick('bigtableReadsPerWait', b.wake?.['wake-up wait']?.readsPerWait);
  return {
    subscriberMsPerEvent: subscriber ?? DEFAULT_CPU.subscriberMsPerEvent,
    apiMsPerRequest: request ?? DEFAULT_CPU.apiMsPerRequest,
    apiMsPerWait: wait ?? DEFAULT_CPU.apiMsPerWait,
    apiMsPerNotification: notification ?? DEFAULT_CPU.apiMsPerNotification,
    apiMsPerWakeup: wakeup ?? DEFAULT_CPU.apiMsPerWakeup,
    bigtableReadsPerWait: reads ?? DEFAULT_CPU.bigtableReadsPerWait,
    source:
      taken.length === 0
        ? `${path} has none of the figures; ${DEFAULT_CPU.source}`
        : `${path} (${taken.join(', ')}); the rest from ${DEFAULT_CPU.source}`,
  };
}
