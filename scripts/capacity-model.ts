/**
 * The capacity and cost model behind `npm run capacity`: pure arithmetic from a load (operations
 * a minute, events and waits per operation, API instances) and the CPU costs `npm run bench`
 * measures, to function instances and vCPU, Pub/Sub messages and bytes, Bigtable reads, writes
 * and nodes, log volume, and a monthly cost at list prices.
 *
 * Every constant that is not measured here is named below with where it comes from; prices carry
 * the date they were read and their page. Free tiers are left out (they matter only at the
 * smallest loads), and so are Cloud Monitoring, Cloud Scheduler and network egress (small, or
 * zero inside one region).
 */

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
   * How events reach the subscriber: `push` (the service: one billed request per event) or
   * `pull` (on paper, docs/capacity.md: always-on instances streaming-pull the events, billed
   * per instance, no request fees); absent: push.
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
  /** Bigtable reads per wait (1 after the notification, plus the safety-net polls). */
  bigtableReadsPerWait: number;
  /** Where the figures come from. */
  source: string;
}

/**
 * Defaults from measured figures (2-core machine, emulators): an earlier `npm run bench` run,
 * subscriber 3.4 ms CPU per event and 1.09 Bigtable reads per wait; `npm run bench:fanout`
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
  bigtableReadsPerWait: 1.09,
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
   * Bigtable reads a woken wait makes besides the ones `bigtableReadsPerWait` measured on the
   * notification path (a wake-up has no body: the woken wait reads the row once).
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
   * and GiB-second; only the pull-based subscriber (on paper) would use it.
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

export interface Flow {
  messagesPerSecond: number;
  /** Bytes a second as billed (minimums applied). */
  billedBytesPerSecond: number;
}

export interface CostLine {
  name: string;
  monthlyUsd: number;
}

export interface CapacityResult {
  load: Load;
  cpu: CpuCosts;
  operationsPerSecond: number;
  /** Events a worker publishes per operation after progress coalescing. */
  eventsPerOperation: number;
  eventsPerSecond: number;
  apiRequestsPerSecond: number;
  waitsInFlight: number;
  subscriber: { vcpu: number; instances: number; billedInstances: number };
  api: {
    /** vCPU of the requests and waits, whatever the instance count. */
    workVcpu: number;
    /** vCPU each instance spends on the notifications it receives (the fan-out). */
    notificationVcpuPerInstance: number;
    instances: number;
    vcpu: number;
    /** CPU use of one instance at that count (1 = a full vCPU). */
    utilisation: number;
    /**
     * Operations a minute at which the notifications alone take an instance's CPU target: past
     * it, no number of API instances keeps up (each one receives every wake-up message).
     */
    fanOutLimitOperationsPerMinute: number;
  };
  pubsub: {
    events: { published: Flow; delivered: Flow };
    notifications: { published: Flow; delivered: Flow; fanOut: number };
    deadLetters: { published: Flow; delivered: Flow };
    billedBytesPerSecond: number;
  };
  bigtable: {
    readsPerSecond: number;
    writesPerSecond: number;
    conditionalWritesPerSecond: number;
    storedGiB: number;
    nodesForThroughput: number;
    nodesForStorage: number;
    nodes: number;
  };
  logging: { entriesPerSecond: number; bytesPerSecond: number };
  cost: {
    lines: CostLine[];
    totalMonthlyUsd: number;
    dominant: string;
    /** Total cost per million operations. */
    perMillionOperationsUsd: number;
  };
  /** What exceeds a limit at this load, first the ones that cannot be fixed by scaling. */
  limits: string[];
}

const TiB = 1024 ** 4;
const GiB = 1024 ** 3;

function flow(messagesPerSecond: number, bytes: number, minimum: number): Flow {
  return { messagesPerSecond, billedBytesPerSecond: messagesPerSecond * Math.max(bytes, minimum) };
}

/** The model. Pure: same inputs, same result. */
export function capacity(
  load: Load,
  cpu: CpuCosts = DEFAULT_CPU,
  a: Assumptions = ASSUMPTIONS,
  prices: Prices = PRICES,
): CapacityResult {
  const ops = load.operationsPerMinute / 60;
  const reports = Math.max(0, load.eventsPerOperation - 1);
  const progressEvents =
    load.progressIntervalSeconds === undefined || load.progressIntervalSeconds <= 0
      ? reports
      : Math.min(reports, Math.floor(a.operationSeconds / load.progressIntervalSeconds) + 1);
  const eventsPerOperation = progressEvents + 1;
  const events = ops * eventsPerOperation;
  const terminalEvents = ops;
  const metadataEvents = events - terminalEvents;
  const deadLetters = events * load.deadLetterFraction;
  const plainRequests = ops * (1 + load.getsPerOperation);
  const waits = ops * load.waitsPerOperation;
  const requests = plainRequests + waits;
  const waitsInFlight = waits * a.waitSeconds;

  // Subscriber: CPU per event, and at least what the deliveries in flight keep busy.
  const subscriberVcpu = (events * cpu.subscriberMsPerEvent) / 1000;
  const subscriberInstances = Math.max(
    1,
    Math.ceil(subscriberVcpu / (a.subscriberVcpuPerInstance * a.cpuTargetUtilisation)),
    Math.ceil((events * a.pushSeconds) / a.subscriberConcurrency),
  );
  // Billed while a delivery is in flight: below one busy instance, the busy share of one.
  const subscriberBilled = Math.max(
    subscriberVcpu / (a.subscriberVcpuPerInstance * a.cpuTargetUtilisation),
    Math.min(1, events * a.pushSeconds),
  );

  // Notifications: the subscriber announces every applied event, the API every creation.
  const notificationsPublished = ops * (eventsPerOperation + 1);
  const wakeupsPerInstance = load.wakeups === 'all' ? notificationsPublished : terminalEvents;
  const wakeupBytes = load.wakeups === 'all' ? a.notificationBytes : a.wakeupBytes;
  const msPerWakeup =
    load.wakeups === 'all'
      ? cpu.apiMsPerNotification
      : (cpu.apiMsPerWakeup ?? cpu.apiMsPerNotification);

  // API: requests and waits, plus every wake-up message on every instance.
  const apiWorkVcpu = (plainRequests * cpu.apiMsPerRequest + waits * cpu.apiMsPerWait) / 1000;
  const perInstanceNotificationVcpu = (wakeupsPerInstance * msPerWakeup) / 1000;
  const usable = a.apiVcpuPerInstance * a.cpuTargetUtilisation - perInstanceNotificationVcpu;
  const neededForCpu = usable > 0 ? Math.ceil(apiWorkVcpu / usable) : Number.POSITIVE_INFINITY;
  const neededForWaits = Math.ceil(waitsInFlight / a.apiConcurrency);
  const computedInstances = Math.max(1, neededForCpu, neededForWaits);
  const wakeupsPerOperation = load.wakeups === 'all' ? eventsPerOperation + 1 : 1;
  const fanOutLimit =
    ((a.apiVcpuPerInstance * a.cpuTargetUtilisation * 1000) / msPerWakeup / wakeupsPerOperation) *
    60;
  const apiInstances = load.apiInstances ?? computedInstances;
  const apiVcpu = Number.isFinite(apiInstances)
    ? apiWorkVcpu + apiInstances * perInstanceNotificationVcpu
    : Number.POSITIVE_INFINITY;
  const utilisation = Number.isFinite(apiInstances)
    ? apiVcpu / (apiInstances * a.apiVcpuPerInstance)
    : Number.POSITIVE_INFINITY;

  // Pub/Sub flows.
  const min = a.pubsubMinBilledBytes;
  const pullMin = a.streamingPullBilledAtSize ? 0 : min;
  const eventFlows = {
    published: flow(events, a.eventBytes, min),
    delivered: flow(events, a.eventBytes, min),
  };
  // Unbounded when the fan-out alone saturates every instance: no instance count keeps up.
  const fanOut = apiInstances;
  const notificationFlows = {
    published: flow(
      notificationsPublished + (load.wakeups === 'all' ? 0 : terminalEvents),
      a.notificationBytes,
      min,
    ),
    delivered: flow(wakeupsPerInstance * fanOut, wakeupBytes, pullMin),
    fanOut,
  };
  // Dead letters: published once (by the subscriber or by Pub/Sub), delivered to one consumer.
  const deadLetterFlows = {
    published: flow(deadLetters, a.eventBytes, min),
    delivered: flow(deadLetters, a.eventBytes, min),
  };
  const pubsubBytes = [
    eventFlows.published,
    eventFlows.delivered,
    notificationFlows.published,
    notificationFlows.delivered,
    deadLetterFlows.published,
    deadLetterFlows.delivered,
  ].reduce((sum, f) => sum + f.billedBytesPerSecond, 0);

  // Bigtable: create = a write and a conditional write; progress = a conditional write;
  // terminal = a read and a conditional write; get = a read; wait = the reads measured.
  const readsPerWait =
    cpu.bigtableReadsPerWait + (load.wakeups === 'all' ? 0 : a.wakeupReadsPerWait);
  const reads = terminalEvents + ops * load.getsPerOperation + waits * readsPerWait;
  const writes = ops;
  const conditionalWrites = ops + metadataEvents + terminalEvents;
  const bigtableOps = reads + writes + 2 * conditionalWrites;
  const nodesForThroughput = Math.ceil(
    bigtableOps / (a.bigtableOpsPerNode * a.bigtableTargetUtilisation),
  );
  const storedGiB = (ops * 86_400 * a.retentionDays * a.bytesPerOperationStored) / GiB;
  const nodesForStorage = Math.ceil(storedGiB / a.bigtableStorageGiBPerNode);
  const nodes = Math.max(1, nodesForThroughput, nodesForStorage);

  // Logs: one line per applied event and per API request (two for a create), plus the
  // platform's request log of every request, push deliveries included.
  // With the exclusions only the dead-letter lines (ERROR) are stored; the routine lines are
  // still counted by the log-based metrics, free of charge.
  const appEntries = load.logExclusions ? deadLetters : events + requests + ops + deadLetters;
  const requestEntries = load.logExclusions ? 0 : events + requests;
  const logBytes = appEntries * a.appLogEntryBytes + requestEntries * a.requestLogEntryBytes;

  const month = a.secondsPerMonth;
  const runInstanceSecond = (vcpu: number, gib: number) =>
    vcpu * prices.cloudRunVcpuSecond + gib * prices.cloudRunGiBSecond;
  const lines: CostLine[] = [
    {
      name: 'API function (instances always busy with waits)',
      monthlyUsd:
        fanOut * month * runInstanceSecond(a.apiVcpuPerInstance, a.apiMemoryGiB) +
        (requests * month * prices.cloudRunPerMillionRequests) / 1e6,
    },
    {
      name: 'subscriber function',
      monthlyUsd:
        load.subscriberDelivery === 'pull'
          ? subscriberInstances *
            month *
            (a.subscriberVcpuPerInstance * prices.cloudRunInstanceVcpuSecond +
              a.subscriberMemoryGiB * prices.cloudRunInstanceGiBSecond)
          : subscriberBilled *
              month *
              runInstanceSecond(a.subscriberVcpuPerInstance, a.subscriberMemoryGiB) +
            (events * month * prices.cloudRunPerMillionRequests) / 1e6,
    },
    {
      name: 'Pub/Sub events',
      monthlyUsd:
        ((eventFlows.published.billedBytesPerSecond + eventFlows.delivered.billedBytesPerSecond) *
          month *
          prices.pubsubPerTiB) /
        TiB,
    },
    {
      name: 'Pub/Sub notifications (fan-out to every API instance)',
      monthlyUsd:
        ((notificationFlows.published.billedBytesPerSecond +
          notificationFlows.delivered.billedBytesPerSecond) *
          month *
          prices.pubsubPerTiB) /
        TiB,
    },
    {
      name: 'Pub/Sub dead letters',
      monthlyUsd:
        ((deadLetterFlows.published.billedBytesPerSecond +
          deadLetterFlows.delivered.billedBytesPerSecond) *
          month *
          prices.pubsubPerTiB) /
        TiB,
    },
    {
      name: 'Bigtable nodes',
      monthlyUsd: (nodes * month * prices.bigtableNodeHour) / 3600,
    },
    { name: 'Bigtable storage', monthlyUsd: storedGiB * prices.bigtableSsdGiBMonth },
    { name: 'Cloud Logging', monthlyUsd: (logBytes * month * prices.loggingPerGiB) / GiB },
  ];
  const total = lines.reduce((sum, l) => sum + l.monthlyUsd, 0);
  const operationsPerMonth = ops * month;
  const dominant = lines.reduce((best, l) => (l.monthlyUsd > best.monthlyUsd ? l : best)).name;

  const limits: string[] = [];
  if (usable <= 0) {
    limits.push(
      `API: each instance needs ${round(perInstanceNotificationVcpu, 2)} vCPU for the ` +
        `${round(wakeupsPerInstance)} notifications/s it receives, above its ` +
        `${a.cpuTargetUtilisation} vCPU target: adding instances adds the same load to each`,
    );
  } else if (utilisation > a.cpuTargetUtilisation * 1.0001) {
    limits.push(
      `API: ${apiInstances} instances run at ${Math.round(utilisation * 100)} % CPU ` +
        `(target ${a.cpuTargetUtilisation * 100} %)`,
    );
  }
  if (Number.isFinite(apiInstances) && apiInstances > a.apiMaxInstances) {
    limits.push(`API: ${apiInstances} instances, above api_max_instances = ${a.apiMaxInstances}`);
  }
  if (subscriberInstances > a.subscriberMaxInstances) {
    limits.push(
      `subscriber: ${subscriberInstances} instances, above subscriber_max_instances = ${a.subscriberMaxInstances}`,
    );
  }
  if (nodesForStorage > nodesForThroughput && nodesForStorage > 1) {
    limits.push(`Bigtable: storage, not throughput, sets the node count (${nodesForStorage})`);
  }

  return {
    load,
    cpu,
    operationsPerSecond: ops,
    eventsPerOperation,
    eventsPerSecond: events,
    apiRequestsPerSecond: requests,
    waitsInFlight,
    subscriber: {
      vcpu: subscriberVcpu,
      instances: subscriberInstances,
      billedInstances: subscriberBilled,
    },
    api: {
      workVcpu: apiWorkVcpu,
      notificationVcpuPerInstance: perInstanceNotificationVcpu,
      instances: apiInstances,
      vcpu: apiVcpu,
      utilisation,
      fanOutLimitOperationsPerMinute: fanOutLimit,
    },
    pubsub: {
      events: eventFlows,
      notifications: notificationFlows,
      deadLetters: deadLetterFlows,
      billedBytesPerSecond: pubsubBytes,
    },
    bigtable: {
      readsPerSecond: reads,
      writesPerSecond: writes,
      conditionalWritesPerSecond: conditionalWrites,
      storedGiB,
      nodesForThroughput,
      nodesForStorage,
      nodes,
    },
    logging: { entriesPerSecond: appEntries + requestEntries, bytesPerSecond: logBytes },
    cost: {
      lines,
      totalMonthlyUsd: total,
      dominant,
      perMillionOperationsUsd:
        operationsPerMonth > 0 ? (total / operationsPerMonth) * 1e6 : Number.POSITIVE_INFINITY,
    },
    limits,
  };
}

/** CPU costs from a bench.json (npm run bench), falling back field by field to the defaults. */
export function cpuFromBench(bench: unknown, path: string, fanout?: unknown): CpuCosts {
  const f = (fanout ?? {}) as { apiMsPerNotification?: unknown; apiMsPerWakeup?: unknown };
  const b = (bench ?? {}) as {
    cpu?: Record<string, unknown>;
    events?: { subscriberCpuMsPerEvent?: unknown };
    wake?: Record<string, { readsPerWait?: unknown } | undefined>;
  };
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
  const notification = pick(
    'apiMsPerNotification',
    b.cpu?.apiMsPerNotification,
    f.apiMsPerNotification,
  );
  const wakeup = pick('apiMsPerWakeup', f.apiMsPerWakeup);
  const reads = pick('bigtableReadsPerWait', b.wake?.['notification wait']?.readsPerWait);
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

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
