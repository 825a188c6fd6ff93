/**
 * `npm run capacity -- [--operations-per-minute N] [--events-per-operation E]
 * [--waits-per-operation W] [--gets-per-operation G] [--api-instances I]
 * [--dead-letter-fraction F] [--wakeups all|thin-terminal] [--log-exclusions on|off]
 * [--progress-interval S] [--bench PATH] [--json]`
 *
 * Prints what the service needs at that load and what it costs a month at list prices, from the
 * model in scripts/capacity-model.ts and the CPU figures of bench-results/bench.json and
 * fanout.json when present, then the cost per million operations and the fan-out limit at
 * 10,000 and 100,000 operations a minute with the same options.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeBenchResults } from '../bench/results.js';
import {
  type CapacityResult,
  type CpuCosts,
  capacity,
  cpuFromBench,
  DEFAULT_CPU,
  DEFAULT_LOAD,
  type Flow,
  type Load,
  PRICES,
  round,
} from './capacity-model.js';
import { ROOT } from './run-function.js';

export const CAPACITY_USAGE = `Usage: npm run capacity -- [options]

  --operations-per-minute N   operations created a minute (default ${DEFAULT_LOAD.operationsPerMinute})
  --events-per-operation E    events a worker publishes per operation, the last included (default ${DEFAULT_LOAD.eventsPerOperation})
  --waits-per-operation W     WaitOperation requests per operation (default ${DEFAULT_LOAD.waitsPerOperation})
  --gets-per-operation G      other API requests per operation (default ${DEFAULT_LOAD.getsPerOperation})
  --api-instances I           API instances (default: as many as CPU and waits need)
  --dead-letter-fraction F    share of events dead-lettered (default ${DEFAULT_LOAD.deadLetterFraction})
  --wakeups all|thin-terminal how API instances hear of changes (default ${DEFAULT_LOAD.wakeups}; see docs/capacity.md)
  --log-exclusions on|off     routine logs excluded from storage (default on, infra/monitoring)
  --subscriber-delivery push|pull  push (one billed request per event) or pull (always-on pullers, no request fees; Terraform's subscriber_delivery)
  --progress-interval S       worker SDK progress interval in seconds, 0 for none (default ${DEFAULT_LOAD.progressIntervalSeconds})
  --bench PATH                CPU figures (default bench-results/bench.json, and fanout.json
                              beside it, when present)
  --json                      the whole result as JSON
`;

export function parseLoad(argv: string[]): { load: Load; benchPath: string; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      'operations-per-minute': { type: 'string' },
      'events-per-operation': { type: 'string' },
      'waits-per-operation': { type: 'string' },
      'gets-per-operation': { type: 'string' },
      'api-instances': { type: 'string' },
      'dead-letter-fraction': { type: 'string' },
      wakeups: { type: 'string' },
      'log-exclusions': { type: 'string' },
      'progress-interval': { type: 'string' },
      'subscriber-delivery': { type: 'string' },
      bench: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) throw new UsageHelp();
  const number = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const events = number('events-per-operation', values['events-per-operation'], 5, 1);
  const wakeups = values.wakeups ?? DEFAULT_LOAD.wakeups;
  if (wakeups !== 'all' && wakeups !== 'thin-terminal') {
    throw new Error('--wakeups must be all or thin-terminal');
  }
  const exclusions = values['log-exclusions'] ?? 'on';
  if (exclusions !== 'on' && exclusions !== 'off') {
    throw new Error('--log-exclusions must be on or off');
  }
  const interval = number(
    'progress-interval',
    values['progress-interval'],
    DEFAULT_LOAD.progressIntervalSeconds ?? 0,
    0,
  );
  const delivery = values['subscriber-delivery'] ?? 'push';
  if (delivery !== 'push' && delivery !== 'pull') {
    throw new Error('--subscriber-delivery must be push or pull');
  }
  const instances = values['api-instances'];
  return {
    load: {
      operationsPerMinute: number(
        'operations-per-minute',
        values['operations-per-minute'],
        DEFAULT_LOAD.operationsPerMinute,
        0,
      ),
      eventsPerOperation: events,
      waitsPerOperation: number(
        'waits-per-operation',
        values['waits-per-operation'],
        DEFAULT_LOAD.waitsPerOperation,
        0,
      ),
      getsPerOperation: number(
        'gets-per-operation',
        values['gets-per-operation'],
        DEFAULT_LOAD.getsPerOperation,
        0,
      ),
      apiInstances:
        instances === undefined ? undefined : Math.ceil(number('api-instances', instances, 1, 1)),
      deadLetterFraction: number(
        'dead-letter-fraction',
        values['dead-letter-fraction'],
        DEFAULT_LOAD.deadLetterFraction,
        0,
      ),
      wakeups,
      logExclusions: exclusions === 'on',
      progressIntervalSeconds: interval,
      subscriberDelivery: delivery,
    },
    benchPath: values.bench ?? resolve(ROOT, 'bench-results/bench.json'),
    json: values.json === true,
  };
}

export class UsageHelp extends Error {}

/**
 * CPU figures from bench.json, decoded through its schema (bench/results.ts: a malformed file is
 * an error), and, beside it, fanout.json (npm run bench:fanout), when present.
 */
export function loadCpu(path: string): CpuCosts {
  const fanoutPath = resolve(dirname(path), 'fanout.json');
  const bench = existsSync(path) ? decodeBenchResults(readFileSync(path, 'utf8'), path) : undefined;
  const fanout = existsSync(fanoutPath)
    ? (JSON.parse(readFileSync(fanoutPath, 'utf8')) as unknown)
    : undefined;
  if (bench === undefined && fanout === undefined) {
    return { ...DEFAULT_CPU, source: `${DEFAULT_CPU.source} (${path} absent)` };
  }
  const names = [bench && path, fanout && fanoutPath].filter((n) => typeof n === 'string');
  return cpuFromBench(bench, names.join(' and '), fanout);
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
    : 'unbounded';
const bytes = (perSecond: number) =>
  perSecond >= 1024 ** 2
    ? `${fmt(perSecond / 1024 ** 2, 1)} MiB/s`
    : `${fmt(perSecond / 1024, 1)} KiB/s`;
const flowText = (f: Flow) =>
  `${fmt(f.messagesPerSecond, 1)} msg/s, ${bytes(f.billedBytesPerSecond)}`;

/** The human-readable report. */
export function formatCapacity(r: CapacityResult): string {
  const l = r.load;
  const out: string[] = [];
  out.push(
    `Load: ${fmt(l.operationsPerMinute)} operations/min (${fmt(r.operationsPerSecond, 2)}/s), ` +
      `${l.eventsPerOperation} events, ${l.waitsPerOperation} waits and ${l.getsPerOperation} gets per operation, ` +
      `wake-ups: ${l.wakeups}, log exclusions ${l.logExclusions ? 'on' : 'off'}, ` +
      `subscriber ${l.subscriberDelivery ?? 'push'}, progress interval ${l.progressIntervalSeconds ?? 0} s (${fmt(r.eventsPerOperation, 1)} events published per operation)`,
  );
  out.push(`CPU figures: ${r.cpu.source}`);
  out.push(
    `  subscriber ${r.cpu.subscriberMsPerEvent} ms/event; API ${r.cpu.apiMsPerRequest} ms/request, ` +
      `${r.cpu.apiMsPerWait} ms/wait, ${r.cpu.apiMsPerNotification} ms/notification, ` +
      `${r.cpu.apiMsPerWakeup ?? r.cpu.apiMsPerNotification} ms/wake-up; ` +
      `${r.cpu.bigtableReadsPerWait} Bigtable reads/wait`,
  );
  out.push('');
  out.push('Functions');
  out.push(
    `  subscriber  ${fmt(r.eventsPerSecond, 1)} events/s -> ${fmt(r.subscriber.vcpu, 2)} vCPU, ` +
      `${fmt(r.subscriber.instances)} instances`,
  );
  out.push(
    `  API         ${fmt(r.apiRequestsPerSecond, 1)} requests/s, ${fmt(r.waitsInFlight)} waits in flight -> ` +
      `${fmt(r.api.vcpu, 2)} vCPU, ${fmt(r.api.instances)} instances at ${fmt(r.api.utilisation * 100)} % CPU ` +
      `(notifications alone: ${fmt(r.api.notificationVcpuPerInstance, 3)} vCPU per instance)`,
  );
  out.push(
    `              the ${l.wakeups === 'all' ? 'notification' : 'wake-up'} fan-out alone fills an instance at ` +
      `${fmt(r.api.fanOutLimitOperationsPerMinute)} operations/min`,
  );
  out.push('');
  out.push('Pub/Sub (billed bytes: 1000-byte minimum per publish and push)');
  out.push(`  events         published ${flowText(r.pubsub.events.published)}`);
  out.push(`                 pushed    ${flowText(r.pubsub.events.delivered)}`);
  out.push(`  notifications  published ${flowText(r.pubsub.notifications.published)}`);
  out.push(
    `                 delivered ${flowText(r.pubsub.notifications.delivered)} ` +
      `(fan-out: ${fmt(r.pubsub.notifications.fanOut)} API instances, one subscription each)`,
  );
  out.push(`  dead letters   published ${flowText(r.pubsub.deadLetters.published)}`);
  out.push(`                 delivered ${flowText(r.pubsub.deadLetters.delivered)}`);
  out.push(`  total          ${bytes(r.pubsub.billedBytesPerSecond)}`);
  out.push('');
  out.push('Bigtable');
  out.push(
    `  ${fmt(r.bigtable.readsPerSecond, 1)} reads/s, ${fmt(r.bigtable.writesPerSecond, 1)} writes/s, ` +
      `${fmt(r.bigtable.conditionalWritesPerSecond, 1)} conditional writes/s; ` +
      `${fmt(r.bigtable.storedGiB, 1)} GiB stored -> ${r.bigtable.nodes} node(s) ` +
      `(throughput ${r.bigtable.nodesForThroughput}, storage ${r.bigtable.nodesForStorage})`,
  );
  out.push('');
  out.push(
    `Cloud Logging: ${fmt(r.logging.entriesPerSecond, 1)} entries/s, ${bytes(r.logging.bytesPerSecond)}`,
  );
  out.push('');
  out.push(`Monthly cost at list prices (read ${PRICES.date}; free tiers left out)`);
  const width = Math.max(...r.cost.lines.map((line) => line.name.length));
  for (const line of r.cost.lines) {
    const mark = line.name === r.cost.dominant ? '  <- dominant' : '';
    out.push(`  ${line.name.padEnd(width)}  $${fmt(line.monthlyUsd, 2).padStart(12)}${mark}`);
  }
  out.push(`  ${'total'.padEnd(width)}  $${fmt(r.cost.totalMonthlyUsd, 2).padStart(12)}`);
  out.push(
    `  ${'per million operations'.padEnd(width)}  $${fmt(r.cost.perMillionOperationsUsd, 2).padStart(12)}`,
  );
  if (r.limits.length > 0) {
    out.push('');
    out.push('Limits reached');
    for (const limit of r.limits) out.push(`  - ${limit}`);
  }
  return `${out.join('\n')}\n`;
}

/** Cost per million operations and fan-out limit at 10,000 and 100,000 operations a minute. */
export function formatTargets(load: Load, cpu: CpuCosts): string {
  const out = [
    '',
    'At the target loads (same options):',
    '| operations/min | $ per million operations | $ a month | API instances | fan-out limit (operations/min) | largest term |',
    '|---|---|---|---|---|---|',
  ];
  for (const operationsPerMinute of [10_000, 100_000]) {
    const r = capacity({ ...load, operationsPerMinute, apiInstances: undefined }, cpu);
    const fits = Number.isFinite(r.api.instances);
    out.push(
      `| ${fmt(operationsPerMinute)} | ${fits ? fmt(r.cost.perMillionOperationsUsd, 2) : 'does not fit'} | ` +
        `${fits ? fmt(r.cost.totalMonthlyUsd) : '—'} | ${fmt(r.api.instances)} | ` +
        `${fmt(r.api.fanOutLimitOperationsPerMinute)} | ${r.cost.dominant} |`,
    );
  }
  return `${out.join('\n')}\n`;
}

/** Entry point; returns the exit code. */
export function main(argv: string[], write: (text: string) => void): number {
  let parsed: ReturnType<typeof parseLoad>;
  try {
    parsed = parseLoad(argv);
  } catch (err) {
    if (err instanceof UsageHelp) {
      write(CAPACITY_USAGE);
      return 0;
    }
    write(`${(err as Error).message}\n\n${CAPACITY_USAGE}`);
    return 2;
  }
  let cpu: CpuCosts;
  try {
    cpu = loadCpu(parsed.benchPath);
  } catch (err) {
    write(`${(err as Error).message}\n`);
    return 1;
  }
  const result = capacity(parsed.load, cpu);
  write(
    parsed.json
      ? `${JSON.stringify(result, null, 2)}\n`
      : formatCapacity(result) + formatTargets(parsed.load, cpu),
  );
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  process.exitCode = main(process.argv.slice(2), (text) => process.stdout.write(text));
}

export { round };
