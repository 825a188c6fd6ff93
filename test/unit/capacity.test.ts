/**
 * The capacity model's arithmetic on a small case worked by hand, the fan-out limit, reading the
 * benchmark's JSON, and the command line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../scripts/capacity.js';
import {
  ASSUMPTIONS,
  type CpuCosts,
  capacity,
  cpuFromBench,
  DEFAULT_CPU,
  type Load,
  PRICES,
} from '../../scripts/capacity-model.js';

const TiB = 1024 ** 4;
const GiB = 1024 ** 3;

/** One operation a second, two events each (one progress, one terminal), one wait, no gets. */
const load: Load = {
  operationsPerMinute: 60,
  eventsPerOperation: 2,
  waitsPerOperation: 1,
  getsPerOperation: 0,
  apiInstances: 2,
  deadLetterFraction: 0.5,
  wakeups: 'all',
};
const cpu: CpuCosts = {
  subscriberMsPerEvent: 10,
  apiMsPerRequest: 5,
  apiMsPerWait: 10,
  apiMsPerNotification: 1,
  bigtableReadsPerWait: 1,
  source: 'test',
};
/** A month of 1,000,000 s; prices chosen so that a byte costs $1e-9 for Pub/Sub and logging. */
const assumptions = { ...ASSUMPTIONS, secondsPerMonth: 1_000_000 };
const prices = {
  ...PRICES,
  cloudRunVcpuSecond: 0.00001,
  cloudRunGiBSecond: 0.000001,
  cloudRunPerMillionRequests: 1,
  pubsubPerTiB: TiB * 1e-9,
  bigtableNodeHour: 3.6,
  bigtableSsdGiBMonth: 1,
  loggingPerGiB: GiB * 1e-9,
};

describe('capacity model', () => {
  it('adds up a small case worked by hand', () => {
    const r = capacity(load, cpu, assumptions, prices);
    // 1 operation/s, 2 events/s, 1 dead letter/s, 1 create + 1 wait = 2 requests/s, 20 s waits.
    expect(r.operationsPerSecond).toBe(1);
    expect(r.eventsPerSecond).toBe(2);
    expect(r.apiRequestsPerSecond).toBe(2);
    expect(r.waitsInFlight).toBe(20);

    // Subscriber: 2 events x 10 ms = 0.02 vCPU, one instance, busy 2 x 0.03 s = 6 % of the time.
    expect(r.subscriber.vcpu).toBeCloseTo(0.02, 10);
    expect(r.subscriber.instances).toBe(1);
    expect(r.subscriber.billedInstances).toBeCloseTo(0.06, 10);

    // API: 1 create x 5 ms + 1 wait x 10 ms = 0.015 vCPU; 3 notifications/s (2 events + the
    // creation) x 1 ms = 0.003 vCPU on each of the 2 instances: 0.021 vCPU, 1.05 % each.
    expect(r.api.workVcpu).toBeCloseTo(0.015, 10);
    expect(r.api.notificationVcpuPerInstance).toBeCloseTo(0.003, 10);
    expect(r.api.vcpu).toBeCloseTo(0.021, 10);
    expect(r.api.utilisation).toBeCloseTo(0.0105, 10);
    // 0.6 vCPU / 1 ms = 600 notifications/s = 200 operations/s = 12,000 a minute.
    expect(r.api.fanOutLimitOperationsPerMinute).toBeCloseTo(12_000, 6);

    // Pub/Sub, billed at 1000 bytes at least per publish and push, streaming pull at size:
    // events 2 x 1000 published + 2 x 1000 pushed; notifications 3 x 1000 published and
    // 3 x 2 instances x 800 delivered; dead letters 1 x 1000 published + 1 x 1000 delivered.
    expect(r.pubsub.events.published).toEqual({ messagesPerSecond: 2, billedBytesPerSecond: 2000 });
    expect(r.pubsub.events.delivered).toEqual({ messagesPerSecond: 2, billedBytesPerSecond: 2000 });
    expect(r.pubsub.notifications.published).toEqual({
      messagesPerSecond: 3,
      billedBytesPerSecond: 3000,
    });
    expect(r.pubsub.notifications.delivered).toEqual({
      messagesPerSecond: 6,
      billedBytesPerSecond: 4800,
    });
    expect(r.pubsub.notifications.fanOut).toBe(2);
    expect(r.pubsub.deadLetters.published.billedBytesPerSecond).toBe(1000);
    expect(r.pubsub.billedBytesPerSecond).toBe(13_800);

    // Bigtable: reads = 1 (terminal event) + 1 (wait); writes = 1 (create); conditional writes =
    // 1 (create) + 1 (progress) + 1 (terminal). 86,400 x 30 operations of 2000 bytes kept.
    expect(r.bigtable.readsPerSecond).toBe(2);
    expect(r.bigtable.writesPerSecond).toBe(1);
    expect(r.bigtable.conditionalWritesPerSecond).toBe(3);
    expect(r.bigtable.storedGiB).toBeCloseTo(5_184_000_000 / GiB, 10);
    expect(r.bigtable.nodes).toBe(1);

    // Logs: 2 event lines + 2 request lines + 1 creation line + 1 dead-letter line at 700 bytes,
    // and 4 platform request logs (2 pushes, 2 API requests) at 1000 bytes.
    expect(r.logging.entriesPerSecond).toBe(10);
    expect(r.logging.bytesPerSecond).toBe(8200);

    // Monthly cost (1,000,000 s):
    const cost = Object.fromEntries(r.cost.lines.map((l) => [l.name, l.monthlyUsd]));
    // API: 2 instances x 1e6 s x (1 vCPU x 1e-5 + 1 GiB x 1e-6) = 22, + 2e6 requests x $1/M = 2.
    expect(cost['API function (instances always busy with waits)']).toBeCloseTo(24, 8);
    // Subscriber: 0.06 x 1e6 s x (1e-5 + 0.5 x 1e-6) = 0.63, + 2e6 requests x $1/M = 2.
    expect(cost['subscriber function']).toBeCloseTo(2.63, 8);
    // Pub/Sub at $1e-9 a byte: events 4000 B/s, notifications 7800 B/s, dead letters 2000 B/s.
    expect(cost['Pub/Sub events']).toBeCloseTo(4, 8);
    expect(cost['Pub/Sub notifications (fan-out to every API instance)']).toBeCloseTo(7.8, 8);
    expect(cost['Pub/Sub dead letters']).toBeCloseTo(2, 8);
    // Bigtable: 1 node x 1e6 s x $3.6/h = 1000; storage 4.828 GiB x $1.
    expect(cost['Bigtable nodes']).toBeCloseTo(1000, 8);
    expect(cost['Bigtable storage']).toBeCloseTo(5_184_000_000 / GiB, 8);
    // Logging: 8200 B/s x 1e6 s at $1e-9 a byte.
    expect(cost['Cloud Logging']).toBeCloseTo(8.2, 8);
    expect(r.cost.totalMonthlyUsd).toBeCloseTo(
      24 + 2.63 + 4 + 7.8 + 2 + 1000 + 5_184_000_000 / GiB + 8.2,
      8,
    );
    expect(r.cost.dominant).toBe('Bigtable nodes');
    expect(r.limits).toEqual([]);
  });

  it('sends only terminal wake-ups, thin, to the API instances with the design change', () => {
    const r = capacity({ ...load, wakeups: 'thin-terminal' }, cpu, assumptions, prices);
    // 1 terminal change/s on each of 2 instances, 120 bytes each; the full notifications are
    // still published (3/s) and the wake-up is published too (1/s), each at 1000 bytes billed.
    expect(r.api.notificationVcpuPerInstance).toBeCloseTo(0.001, 10);
    expect(r.pubsub.notifications.published).toEqual({
      messagesPerSecond: 4,
      billedBytesPerSecond: 4000,
    });
    expect(r.pubsub.notifications.delivered).toEqual({
      messagesPerSecond: 2,
      billedBytesPerSecond: 240,
    });
    // The limit moves by the events per operation + 1: 600 operations/s.
    expect(r.api.fanOutLimitOperationsPerMinute).toBeCloseTo(36_000, 6);
  });

  it('reports the fan-out limit when the notifications alone fill every API instance', () => {
    const busy = { ...cpu, apiMsPerNotification: 300 }; // 3/s x 300 ms = 0.9 vCPU > 0.6
    const r = capacity({ ...load, apiInstances: undefined }, busy, assumptions, prices);
    expect(r.api.instances).toBe(Number.POSITIVE_INFINITY);
    expect(r.limits[0]).toMatch(/adding instances adds the same load/);
    expect(r.cost.dominant).toBe('API function (instances always busy with waits)');
    // Computed instance count otherwise: CPU and waits in flight.
    const sized = capacity(
      { ...load, apiInstances: undefined, waitsPerOperation: 100 },
      cpu,
      assumptions,
      prices,
    );
    // 100 waits/s x 20 s = 2000 in flight / 1000 per instance = 2; CPU: (5 + 1000) ms/s = 1.005
    // vCPU over (0.6 - 3 x 1 ms) = 0.597 per instance = 2 instances.
    expect(sized.api.instances).toBe(2);
  });

  it('reads the CPU figures of bench.json, old and new shapes, and falls back field by field', () => {
    expect(cpuFromBench({ events: { subscriberCpuMsPerEvent: 4.2 } }, 'b.json')).toMatchObject({
      subscriberMsPerEvent: 4.2,
      apiMsPerRequest: DEFAULT_CPU.apiMsPerRequest,
    });
    const newer = cpuFromBench(
      {
        cpu: { subscriberMsPerEvent: 2.5, apiMsPerGet: 1.5, apiMsPerWait: 0.9 },
        events: { subscriberCpuMsPerEvent: 9 },
        wake: { 'wake-up wait': { readsPerWait: 1.2 } },
      },
      'b.json',
    );
    expect(newer).toMatchObject({
      subscriberMsPerEvent: 2.5,
      apiMsPerRequest: 1.5,
      apiMsPerWait: 0.9,
      apiMsPerNotification: DEFAULT_CPU.apiMsPerNotification,
      bigtableReadsPerWait: 1.2,
    });
    expect(newer.source).toContain('b.json');
    // The CPU per notification comes from the fan-out benchmark.
    expect(cpuFromBench({}, 'f.json', { apiMsPerNotification: 0.3 }).apiMsPerNotification).toBe(
      0.3,
    );
    // A figure not measured (null in the file, NaN once decoded) or not positive falls back.
    expect(
      cpuFromBench({ cpu: { apiMsPerGet: Number.NaN, apiMsPerWait: -1 } }, 'b.json'),
    ).toMatchObject({
      apiMsPerRequest: DEFAULT_CPU.apiMsPerRequest,
      apiMsPerWait: DEFAULT_CPU.apiMsPerWait,
    });
  });

  it('prints the report with the dominant term marked, from a given bench.json', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lro-capacity-'));
    try {
      const bench = path.join(dir, 'bench.json');
      writeFileSync(bench, JSON.stringify({ cpu: { subscriberMsPerEvent: 7 } }));
      writeFileSync(path.join(dir, 'fanout.json'), JSON.stringify({ apiMsPerNotification: 0.5 }));
      let out = '';
      const code = main(
        ['--operations-per-minute', '600', '--events-per-operation', '3', '--bench', bench],
        (t) => {
          out += t;
        },
      );
      expect(code).toBe(0);
      expect(out).toContain('600 operations/min');
      expect(out).toContain('subscriber 7 ms/event');
      expect(out).toContain('0.5 ms/notification');
      expect(out).toContain('fanout.json');
      expect(out).toContain(bench);
      expect(out.match(/<- dominant/g)).toHaveLength(1);
      let json = '';
      main(['--operations-per-minute', '600', '--bench', bench, '--json'], (t) => {
        json += t;
      });
      expect(JSON.parse(json).eventsPerSecond).toBe(50);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    let err = '';
    expect(main(['--operations-per-minute', 'many'], (t) => (err += t))).toBe(2);
    expect(err).toContain('--operations-per-minute must be a number');
    expect(main(['--wakeups', 'some'], () => undefined)).toBe(2);
    expect(main(['--nope'], () => undefined)).toBe(2);
  });
});
