/**
 * The capacity model's terms for thin wake-ups, log exclusions and progress coalescing, on small
 * cases worked by hand, and the per-million and target-load figures `npm run capacity` prints.
 */
import { describe, expect, it } from 'vitest';
import { formatTargets, main } from '../../scripts/capacity.js';
import {
  ASSUMPTIONS,
  type CpuCosts,
  capacity,
  cpuFromBench,
  DEFAULT_LOAD,
  type Load,
  PRICES,
} from '../../scripts/capacity-model.js';

/** One operation a second, five events (four progress reports), one wait, no gets. */
const load: Load = {
  operationsPerMinute: 60,
  eventsPerOperation: 5,
  waitsPerOperation: 1,
  getsPerOperation: 0,
  apiInstances: 2,
  deadLetterFraction: 0,
  wakeups: 'thin-terminal',
};
const cpu: CpuCosts = {
  subscriberMsPerEvent: 10,
  apiMsPerRequest: 5,
  apiMsPerWait: 10,
  apiMsPerNotification: 1,
  apiMsPerWakeup: 0.5,
  bigtableReadsPerWait: 1,
  source: 'test',
};
const a = { ...ASSUMPTIONS, secondsPerMonth: 1_000_000, operationSeconds: 20 };

describe('capacity model: wake-ups, logs, coalescing', () => {
  it('charges each instance the wake-up CPU of ended operations only, and one read per wake-up', () => {
    const r = capacity(load, cpu, a, PRICES);
    // 1 wake-up/s x 0.5 ms on each instance; the limit: 0.6 vCPU / 0.5 ms = 1200/s = 72,000/min.
    expect(r.api.notificationVcpuPerInstance).toBeCloseTo(0.0005, 10);
    expect(r.api.fanOutLimitOperationsPerMinute).toBeCloseTo(72_000, 6);
    // Reads: 1 (terminal event) + 1 wait x 1 measured (the API counts the wake-up's read in it).
    expect(r.bigtable.readsPerSecond).toBe(2);
    // Two measured reads per wait (the first, the wake-up's): 1 + 2.
    expect(
      capacity(load, { ...cpu, bigtableReadsPerWait: 2 }, a, PRICES).bigtable.readsPerSecond,
    ).toBe(3);
    // Without a figure of its own a wake-up costs what a notification costs.
    const { apiMsPerWakeup: _, ...noWakeup } = cpu;
    expect(capacity(load, noWakeup, a, PRICES).api.notificationVcpuPerInstance).toBeCloseTo(
      0.001,
      10,
    );
    // The earlier design: every notification (5 events + creation) on every instance; the woken
    // wait took the state from the notification, without the wake-up's read (at least one read).
    const all = capacity({ ...load, wakeups: 'all' }, cpu, a, PRICES);
    expect(all.api.notificationVcpuPerInstance).toBeCloseTo(0.006, 10);
    expect(all.bigtable.readsPerSecond).toBe(2);
    const allTwo = capacity(
      { ...load, wakeups: 'all' },
      { ...cpu, bigtableReadsPerWait: 2.5 },
      a,
      PRICES,
    );
    expect(allTwo.bigtable.readsPerSecond).toBe(2.5);
  });

  it('stores only the dead-letter lines when the routine logs are excluded', () => {
    const logged = capacity({ ...load, deadLetterFraction: 0.2 }, cpu, a, PRICES);
    // 5 event lines + 2 request lines + 1 creation + 1 dead letter at 700 B, 7 request logs at 1000 B.
    expect(logged.logging.bytesPerSecond).toBeCloseTo(9 * 700 + 7 * 1000, 6);
    const excluded = capacity(
      { ...load, deadLetterFraction: 0.2, logExclusions: true },
      cpu,
      a,
      PRICES,
    );
    expect(excluded.logging.bytesPerSecond).toBeCloseTo(700, 6);
  });

  it('counts at most one progress event per interval over an operation', () => {
    // 20 s operations, 1 s interval: at most 21 progress events; 4 reports are all sent.
    expect(
      capacity({ ...load, progressIntervalSeconds: 1 }, cpu, a, PRICES).eventsPerOperation,
    ).toBe(5);
    // 50 reports (51 events) become 21 progress events + the terminal one.
    const many = { ...load, eventsPerOperation: 51 };
    expect(capacity(many, cpu, a, PRICES).eventsPerOperation).toBe(51);
    const coalesced = capacity({ ...many, progressIntervalSeconds: 1 }, cpu, a, PRICES);
    expect(coalesced.eventsPerOperation).toBe(22);
    expect(coalesced.eventsPerSecond).toBe(22);
    // A 5 s interval: 5 progress events + the terminal one.
    expect(
      capacity({ ...many, progressIntervalSeconds: 5 }, cpu, a, PRICES).eventsPerOperation,
    ).toBe(6);
  });

  it('bills a pull-based subscriber per always-on instance, without request fees', () => {
    const prices = {
      ...PRICES,
      cloudRunInstanceVcpuSecond: 0.00001,
      cloudRunInstanceGiBSecond: 0.000001,
    };
    const pull = capacity({ ...load, subscriberDelivery: 'pull' }, cpu, a, prices);
    const line = pull.cost.lines.find((l) => l.name === 'subscriber function');
    // 1 instance x 1e6 s x (1 vCPU x 1e-5 + 0.5 GiB x 1e-6).
    expect(line?.monthlyUsd).toBeCloseTo(10.5, 8);
  });

  it('divides the monthly cost by the operations of the month', () => {
    const r = capacity(load, cpu, a, PRICES);
    // 1 operation/s over a 1,000,000 s month.
    expect(r.cost.perMillionOperationsUsd).toBeCloseTo(r.cost.totalMonthlyUsd, 8);
  });

  it('reads the wake-up CPU from fanout.json', () => {
    expect(cpuFromBench({}, 'f.json', { apiMsPerWakeup: 0.07 }).apiMsPerWakeup).toBe(0.07);
  });

  it('prints the cost per million and the fan-out limit at 10,000 and 100,000 a minute', () => {
    const text = formatTargets(DEFAULT_LOAD, cpu);
    expect(text).toMatch(/\| 10,000 \| [\d.]+ \|/);
    // 100,000 a minute is past the 72,000 these figures allow: no instance count fits.
    expect(text).toMatch(/\| 100,000 \| does not fit \|/);
    expect(text).toContain('72,000');
    const cheaper = formatTargets(DEFAULT_LOAD, { ...cpu, apiMsPerWakeup: 0.1 });
    expect(cheaper).toMatch(/\| 100,000 \| [\d.]+ \|/);
    let out = '';
    expect(main(['--bench', '/nonexistent/bench.json'], (t) => (out += t))).toBe(0);
    expect(out).toContain('per million operations');
    expect(out).toContain('At the target loads');
    expect(main(['--log-exclusions', 'maybe'], () => undefined)).toBe(2);
  });
});
