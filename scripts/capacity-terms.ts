/**
 * The terms of the capacity model (scripts/capacity-model.ts), one function each: the rates a
 * load makes, the subscriber's and the API's sizing (with the wake-up fan-out), Pub/Sub flows,
 * Bigtable reads, writes and nodes, stored logs, the monthly cost and the limits reached.
 */
import type { Assumptions, CpuCosts, Load, Prices } from './capacity-inputs.js';

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

/** What the load makes a second: operations, events (after coalescing), requests, waits. */
export interface Rates {
  ops: number;
  eventsPerOperation: number;
  events: number;
  terminalEvents: number;
  metadataEvents: number;
  deadLetters: number;
  /** Creates and gets. */
  plainRequests: number;
  waits: number;
  requests: number;
  waitsInFlight: number;
}

export function ratesOf(load: Load, a: Assumptions): Rates {
  const ops = load.operationsPerMinute / 60;
  const reports = Math.max(0, load.eventsPerOperation - 1);
  const progressEvents =
    load.progressIntervalSeconds === undefined || load.progressIntervalSeconds <= 0
      ? reports
      : Math.min(reports, Math.floor(a.operationSeconds / load.progressIntervalSeconds) + 1);
  const eventsPerOperation = progressEvents + 1;
  const events = ops * eventsPerOperation;
  const plainRequests = ops * (1 + load.getsPerOperation);
  const waits = ops * load.waitsPerOperation;
  return {
    ops,
    eventsPerOperation,
    events,
    terminalEvents: ops,
    metadataEvents: events - ops,
    deadLetters: events * load.deadLetterFraction,
    plainRequests,
    waits,
    requests: plainRequests + waits,
    waitsInFlight: waits * a.waitSeconds,
  };
}

/** Subscriber: CPU per event, and at least what the deliveries in flight keep busy. */
export function subscriberOf(
  r: Rates,
  cpu: CpuCosts,
  a: Assumptions,
): CapacityResult['subscriber'] {
  const vcpu = (r.events * cpu.subscriberMsPerEvent) / 1000;
  const instances = Math.max(
    1,
    Math.ceil(vcpu / (a.subscriberVcpuPerInstance * a.cpuTargetUtilisation)),
    Math.ceil((r.events * a.pushSeconds) / a.subscriberConcurrency),
  );
  // Billed while a delivery is in flight: below one busy instance, the busy share of one.
  const billedInstances = Math.max(
    vcpu / (a.subscriberVcpuPerInstance * a.cpuTargetUtilisation),
    Math.min(1, r.events * a.pushSeconds),
  );
  return { vcpu, instances, billedInstances };
}

/** What every API instance receives to wake its waits: every notification, or thin wake-ups. */
export interface FanOut {
  /** Notifications the subscriber and the API publish a second (every change, creations too). */
  notificationsPublished: number;
  /** Messages each API instance receives a second. */
  perInstance: number;
  bytes: number;
  msEach: number;
  perOperation: number;
}

export function fanOutOf(load: Load, r: Rates, cpu: CpuCosts, a: Assumptions): FanOut {
  const all = load.wakeups === 'all';
  const notificationsPublished = r.ops * (r.eventsPerOperation + 1);
  return {
    notificationsPublished,
    perInstance: all ? notificationsPublished : r.terminalEvents,
    bytes: all ? a.notificationBytes : a.wakeupBytes,
    msEach: all ? cpu.apiMsPerNotification : (cpu.apiMsPerWakeup ?? cpu.apiMsPerNotification),
    perOperation: all ? r.eventsPerOperation + 1 : 1,
  };
}

/** API: requests and waits, plus every wake-up message on every instance. */
export function apiOf(
  load: Load,
  r: Rates,
  f: FanOut,
  cpu: CpuCosts,
  a: Assumptions,
): CapacityResult['api'] & { usable: number } {
  const workVcpu = (r.plainRequests * cpu.apiMsPerRequest + r.waits * cpu.apiMsPerWait) / 1000;
  const notificationVcpuPerInstance = (f.perInstance * f.msEach) / 1000;
  const usable = a.apiVcpuPerInstance * a.cpuTargetUtilisation - notificationVcpuPerInstance;
  const neededForCpu = usable > 0 ? Math.ceil(workVcpu / usable) : Number.POSITIVE_INFINITY;
  const neededForWaits = Math.ceil(r.waitsInFlight / a.apiConcurrency);
  const instances = load.apiInstances ?? Math.max(1, neededForCpu, neededForWaits);
  const vcpu = Number.isFinite(instances)
    ? workVcpu + instances * notificationVcpuPerInstance
    : Number.POSITIVE_INFINITY;
  return {
    workVcpu,
    notificationVcpuPerInstance,
    instances,
    vcpu,
    utilisation: Number.isFinite(instances)
      ? vcpu / (instances * a.apiVcpuPerInstance)
      : Number.POSITIVE_INFINITY,
    fanOutLimitOperationsPerMinute:
      ((a.apiVcpuPerInstance * a.cpuTargetUtilisation * 1000) / f.msEach / f.perOperation) * 60,
    usable,
  };
}

/** Pub/Sub flows, billed at the minimum size per publish and push. */
export function pubsubOf(
  load: Load,
  r: Rates,
  f: FanOut,
  fanOut: number,
  a: Assumptions,
): CapacityResult['pubsub'] {
  const min = a.pubsubMinBilledBytes;
  const pullMin = a.streamingPullBilledAtSize ? 0 : min;
  const events = {
    published: flow(r.events, a.eventBytes, min),
    delivered: flow(r.events, a.eventBytes, min),
  };
  // Unbounded when the fan-out alone saturates every instance: no instance count keeps up.
  const notifications = {
    published: flow(
      f.notificationsPublished + (load.wakeups === 'all' ? 0 : r.terminalEvents),
      a.notificationBytes,
      min,
    ),
    delivered: flow(f.perInstance * fanOut, f.bytes, pullMin),
    fanOut,
  };
  // Dead letters: published once (by the subscriber or by Pub/Sub), delivered to one consumer.
  const deadLetters = {
    published: flow(r.deadLetters, a.eventBytes, min),
    delivered: flow(r.deadLetters, a.eventBytes, min),
  };
  const billedBytesPerSecond = [
    events.published,
    events.delivered,
    notifications.published,
    notifications.delivered,
    deadLetters.published,
    deadLetters.delivered,
  ].reduce((sum, x) => sum + x.billedBytesPerSecond, 0);
  return { events, notifications, deadLetters, billedBytesPerSecond };
}

/**
 * Bigtable reads per wait. The measured figure is the API's own count with wake-ups: the first
 * read, the read on the wake-up and the safety-net polls. With full notifications (`all`) the
 * woken wait took the state from the notification and skipped the read on the wake-up.
 */
function readsPerWait(load: Load, cpu: CpuCosts, a: Assumptions): number {
  return load.wakeups === 'all'
    ? Math.max(1, cpu.bigtableReadsPerWait - a.wakeupReadsPerWait)
    : cpu.bigtableReadsPerWait;
}

/**
 * Bigtable: create = a write and a conditional write; progress = a conditional write; terminal =
 * a read and a conditional write; get = a read; wait = the reads measured.
 */
export function bigtableOf(
  load: Load,
  r: Rates,
  cpu: CpuCosts,
  a: Assumptions,
): CapacityResult['bigtable'] {
  const readsPerSecond =
    r.terminalEvents + r.ops * load.getsPerOperation + r.waits * readsPerWait(load, cpu, a);
  const writesPerSecond = r.ops;
  const conditionalWritesPerSecond = r.ops + r.metadataEvents + r.terminalEvents;
  const operations = readsPerSecond + writesPerSecond + 2 * conditionalWritesPerSecond;
  const nodesForThroughput = Math.ceil(
    operations / (a.bigtableOpsPerNode * a.bigtableTargetUtilisation),
  );
  const storedGiB = (r.ops * 86_400 * a.retentionDays * a.bytesPerOperationStored) / GiB;
  const nodesForStorage = Math.ceil(storedGiB / a.bigtableStorageGiBPerNode);
  return {
    readsPerSecond,
    writesPerSecond,
    conditionalWritesPerSecond,
    storedGiB,
    nodesForThroughput,
    nodesForStorage,
    nodes: Math.max(1, nodesForThroughput, nodesForStorage),
  };
}

/**
 * Logs: one line per applied event and per API request (two for a create), plus the platform's
 * request log of every request, push deliveries included. With the exclusions only the
 * dead-letter lines (ERROR) are stored; the routine lines are still counted by the log-based
 * metrics, free of charge.
 */
export function loggingOf(load: Load, r: Rates, a: Assumptions): CapacityResult['logging'] {
  const appEntries = load.logExclusions
    ? r.deadLetters
    : r.events + r.requests + r.ops + r.deadLetters;
  const requestEntries = load.logExclusions ? 0 : r.events + r.requests;
  return {
    entriesPerSecond: appEntries + requestEntries,
    bytesPerSecond: appEntries * a.appLogEntryBytes + requestEntries * a.requestLogEntryBytes,
  };
}

/** The monthly cost of each term at list prices. */
export function costOf(
  load: Load,
  parts: Pick<CapacityResult, 'subscriber' | 'pubsub' | 'bigtable' | 'logging'> & {
    rates: Rates;
  },
  a: Assumptions,
  prices: Prices,
): CapacityResult['cost'] {
  const { rates: r, subscriber, pubsub, bigtable, logging } = parts;
  const month = a.secondsPerMonth;
  const runInstanceSecond = (vcpu: number, gib: number) =>
    vcpu * prices.cloudRunVcpuSecond + gib * prices.cloudRunGiBSecond;
  const pubsubUsd = (f: { published: Flow; delivered: Flow }) =>
    ((f.published.billedBytesPerSecond + f.delivered.billedBytesPerSecond) *
      month *
      prices.pubsubPerTiB) /
    TiB;
  const lines: CostLine[] = [
    {
      name: 'API function (instances always busy with waits)',
      monthlyUsd:
        pubsub.notifications.fanOut *
          month *
          runInstanceSecond(a.apiVcpuPerInstance, a.apiMemoryGiB) +
        (r.requests * month * prices.cloudRunPerMillionRequests) / 1e6,
    },
    {
      name: 'subscriber function',
      monthlyUsd:
        load.subscriberDelivery === 'pull'
          ? subscriber.instances *
            month *
            (a.subscriberVcpuPerInstance * prices.cloudRunInstanceVcpuSecond +
              a.subscriberMemoryGiB * prices.cloudRunInstanceGiBSecond)
          : subscriber.billedInstances *
              month *
              runInstanceSecond(a.subscriberVcpuPerInstance, a.subscriberMemoryGiB) +
            (r.events * month * prices.cloudRunPerMillionRequests) / 1e6,
    },
    { name: 'Pub/Sub events', monthlyUsd: pubsubUsd(pubsub.events) },
    {
      name: 'Pub/Sub notifications (fan-out to every API instance)',
      monthlyUsd: pubsubUsd(pubsub.notifications),
    },
    { name: 'Pub/Sub dead letters', monthlyUsd: pubsubUsd(pubsub.deadLetters) },
    {
      name: 'Bigtable nodes',
      monthlyUsd: (bigtable.nodes * month * prices.bigtableNodeHour) / 3600,
    },
    { name: 'Bigtable storage', monthlyUsd: bigtable.storedGiB * prices.bigtableSsdGiBMonth },
    {
      name: 'Cloud Logging',
      monthlyUsd: (logging.bytesPerSecond * month * prices.loggingPerGiB) / GiB,
    },
  ];
  const total = lines.reduce((sum, l) => sum + l.monthlyUsd, 0);
  const operationsPerMonth = r.ops * month;
  return {
    lines,
    totalMonthlyUsd: total,
    dominant: lines.reduce((best, l) => (l.monthlyUsd > best.monthlyUsd ? l : best)).name,
    perMillionOperationsUsd:
      operationsPerMonth > 0 ? (total / operationsPerMonth) * 1e6 : Number.POSITIVE_INFINITY,
  };
}

/** What exceeds a limit at this load, first the ones that cannot be fixed by scaling. */
export function limitsOf(
  api: ReturnType<typeof apiOf>,
  f: FanOut,
  subscriber: CapacityResult['subscriber'],
  bigtable: CapacityResult['bigtable'],
  a: Assumptions,
): string[] {
  const limits: string[] = [];
  if (api.usable <= 0) {
    limits.push(
      `API: each instance needs ${round(api.notificationVcpuPerInstance, 2)} vCPU for the ` +
        `${round(f.perInstance)} notifications/s it receives, above its ` +
        `${a.cpuTargetUtilisation} vCPU target: adding instances adds the same load to each`,
    );
  } else if (api.utilisation > a.cpuTargetUtilisation * 1.0001) {
    limits.push(
      `API: ${api.instances} instances run at ${Math.round(api.utilisation * 100)} % CPU ` +
        `(target ${a.cpuTargetUtilisation * 100} %)`,
    );
  }
  if (Number.isFinite(api.instances) && api.instances > a.apiMaxInstances) {
    limits.push(`API: ${api.instances} instances, above api_max_instances = ${a.apiMaxInstances}`);
  }
  if (subscriber.instances > a.subscriberMaxInstances) {
    limits.push(
      `subscriber: ${subscriber.instances} instances, above subscriber_max_instances = ${a.subscriberMaxInstances}`,
    );
  }
  if (bigtable.nodesForStorage > bigtable.nodesForThroughput && bigtable.nodesForStorage > 1) {
    limits.push(
      `Bigtable: storage, not throughput, sets the node count (${bigtable.nodesForStorage})`,
    );
  }
  return limits;
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
