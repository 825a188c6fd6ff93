/**
 * Deadlines, heartbeat timeouts and the sweeper against the real Bigtable and Pub/Sub emulators:
 * the due-time index, lazy rescheduling of renewed operations, announcements, races between
 * sweepers and completions, a sweep interrupted half-way, and the rows a sweep reads. Time is the
 * sweeper's injected clock, so nothing here sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../shared/sdk/errors.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { type Notification, parseNotification } from '../../shared/sdk/notifications.js';
import { countedEmitTime } from '../../shared/service/events/worker-clock.js';
import type { Config } from '../../shared/service/runtime/config.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import {
  BigtableOperationStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { type SweeperDeps, sweep } from '../../shared/service/sweeper/sweeper.js';
import { testConfig, testEnv, uniqueSuffix } from '../support/env.js';
import { until } from '../support/event-stack.js';
import { startFunction } from '../support/functions.js';

let env: Record<string, string>;
let config: Config;
let store: BigtableOperationStore;
let messaging: Messaging;
const notifications: Notification[] = [];
let closeListener: () => Promise<void>;
const subscription = `sweeper-test-${uniqueSuffix()}`;
const id = () => `op-${uniqueSuffix()}`;

beforeAll(async () => {
  env = testEnv();
  config = loadConfig(env);
  await ensureTable(config);
  store = new BigtableOperationStore(config);
  messaging = new Messaging(config);
  await messaging.ensureTopic(config.topics.notifications);
  await messaging.ensurePullSubscription(subscription, config.topics.notifications);
  const listener = messaging.listen(subscription, (message) => {
    message.ack();
    const n = parseNotification(message);
    if (n) notifications.push(n);
  });
  closeListener = () => listener.close();
});

afterAll(async () => {
  await closeListener?.();
  await messaging?.deleteSubscription(subscription);
  await messaging?.deleteTopic(config.topics.notifications);
  await messaging?.close();
  await store?.close();
  await deleteTable(config);
});

/** Sweeper dependencies with the clock at `at` (ms since the epoch). */
function deps(at: number, s: BigtableOperationStore = store): SweeperDeps {
  return {
    store: s,
    messaging,
    topics: { notifications: config.topics.notifications },
    now: () => at,
  };
}

async function announced(name: string): Promise<Notification> {
  await until(
    () => notifications.some((n) => n.operation.name === name && n.type === 'failed'),
    20_000,
    `failed notification of ${name}`,
  );
  return notifications.find(
    (n) => n.operation.name === name && n.type === 'failed',
  ) as Notification;
}

describe('the due-time index', () => {
  it('lists only entries due by the given time, earliest first', async () => {
    const now = Date.now();
    const a = await store.create({ id: id(), heartbeatTimeoutMs: 3_000 });
    const b = await store.create({ id: id(), deadline: new Date(now + 2_000) });
    const c = await store.create({ id: id(), heartbeatTimeoutMs: 3_600_000 });
    const due = await store.listDue(new Date(now + 5_000), 1000);
    const names = due.map((e) => e.operation);
    expect(names).toContain(a.operation.name);
    expect(names).toContain(b.operation.name);
    expect(names).not.toContain(c.operation.name);
    expect(names.indexOf(b.operation.name)).toBeLessThan(names.indexOf(a.operation.name));
    const times = due.map((e) => e.due.getTime());
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('gives operations without limits no entry', async () => {
    const op = await store.create({ id: id() });
    const due = await store.listDue(new Date(Date.now() + 10 * 365 * 86_400_000), 100_000);
    expect(due.map((e) => e.operation)).not.toContain(op.operation.name);
  });
});

describe('sweep', () => {
  it('ends an operation past its heartbeat timeout with code 4 and announces it failed', async () => {
    const created = Date.now();
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    const report = await sweep(deps(created + 5_000));
    expect(report.ended).toBeGreaterThanOrEqual(1);
    const stored = (await store.get(op.operation.name)).operation;
    expect(stored.done).toBe(true);
    expect(stored.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(stored.error?.message).toMatch(
      /heartbeat timeout of 1s exceeded; no heartbeat since creation at/,
    );
    expect(Object.keys(stored).sort()).toEqual(['done', 'error', 'name']);
    const notification = await announced(op.operation.name);
    expect(notification.operation).toEqual(stored);
    // The entry is gone: the next sweep finds nothing of it.
    const due = await store.listDue(new Date(created + 10_000), 100_000);
    expect(due.map((e) => e.operation)).not.toContain(op.operation.name);
  });

  it('ends an operation past its deadline even while it heartbeats', async () => {
    const created = Date.now();
    const op = await store.create({
      id: id(),
      deadline: new Date(created + 2_000),
      heartbeatTimeoutMs: 60_000,
    });
    await store.heartbeat(op.operation.name, { time: new Date(created + 1_500) });
    await sweep(deps(created + 3_000));
    const stored = (await store.get(op.operation.name)).operation;
    expect(stored.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(stored.error?.message).toMatch(/^deadline .* exceeded; last heartbeat at /);
  });

  it('does not end a renewed operation: it moves its entry to the new due time', async () => {
    const created = Date.now();
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    const name = op.operation.name;
    expect((await store.heartbeat(name, { time: new Date(created + 900) })).applied).toBe(true);
    // An older heartbeat does not move the last sign of life back.
    expect((await store.heartbeat(name, { time: new Date(created + 100) })).applied).toBe(false);
    const first = await sweep(deps(created + 1_500));
    expect(first.rescheduled).toBeGreaterThanOrEqual(1);
    expect((await store.get(name)).operation.done).toBe(false);
    const entries = (await store.listDue(new Date(created + 2_500), 100_000)).filter(
      (e) => e.operation === name,
    );
    expect(entries.map((e) => e.due.getTime())).toEqual([created + 1_900]);
    await sweep(deps(created + 1_950));
    expect((await store.get(name)).operation.error?.code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it('counts progress as a heartbeat', async () => {
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    const name = op.operation.name;
    const progressAt = Date.now();
    await store.updateMetadata(
      name,
      { '@type': 'type.googleapis.com/test.Progress', percent: 10 },
      { emitTime: new Date(), eventId: 'e1' },
    );
    await sweep(deps(progressAt + 900));
    expect((await store.get(name)).operation.done).toBe(false);
    // Silence: it ends.
    await sweep(deps(Date.now() + 1_100));
    const stored = (await store.get(name)).operation;
    expect(stored.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(stored.error?.message).toMatch(/last heartbeat at /);
    expect(stored.metadata).toEqual({ '@type': 'type.googleapis.com/test.Progress', percent: 10 });
  });

  it('leaves an operation its worker completed as it is and removes its entry', async () => {
    const created = Date.now();
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    await store.complete(op.operation.name, {
      response: { '@type': 'type.googleapis.com/test.Result', ok: true },
    });
    const report = await sweep(deps(created + 2_000));
    expect(report.removed).toBeGreaterThanOrEqual(1);
    const stored = (await store.get(op.operation.name)).operation;
    expect(stored.error).toBeUndefined();
    expect(stored.response).toEqual({ '@type': 'type.googleapis.com/test.Result', ok: true });
    const due = await store.listDue(new Date(created + 2_000), 100_000);
    expect(due.map((e) => e.operation)).not.toContain(op.operation.name);
  });

  it('finishes the work of a sweeper that stopped half-way: announces, then removes the entry', async () => {
    const created = Date.now();
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    // What a sweeper that crashed right after the terminal write leaves: the operation ended,
    // not announced, its entry still there.
    const ended = await store.expire(op.operation.name, new Date(created + 2_000));
    expect(ended.state).toBe('ended');
    expect(notifications.some((n) => n.operation.name === op.operation.name)).toBe(false);
    const report = await sweep(deps(created + 2_000));
    expect(report.reannounced).toBeGreaterThanOrEqual(1);
    const notification = await announced(op.operation.name);
    expect(notification.operation.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    const due = await store.listDue(new Date(created + 2_000), 100_000);
    expect(due.map((e) => e.operation)).not.toContain(op.operation.name);
  });

  it('removes an entry whose operation is gone, after a grace period for creations in flight', async () => {
    const created = Date.now();
    const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
    await store.delete(op.operation.name);
    const soon = await sweep(deps(created + 2_000));
    expect(soon.removed).toBe(0);
    let due = await store.listDue(new Date(created + 2_000), 100_000);
    expect(due.map((e) => e.operation)).toContain(op.operation.name);
    await sweep(deps(created + 120_000));
    due = await store.listDue(new Date(created + 120_000), 100_000);
    expect(due.map((e) => e.operation)).not.toContain(op.operation.name);
  });

  it('reads two rows per operation it ends, whatever else runs', async () => {
    const local = new BigtableOperationStore(
      testConfig({
        LRO_BIGTABLE_TABLE: config.bigtable.table,
        LRO_ROW_KEY_PREFIX: `p${uniqueSuffix()}/`,
      }),
    );
    try {
      const created = Date.now();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          local.create({ id: `long-${i}`, heartbeatTimeoutMs: 3_600_000 }),
        ),
      );
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          local.create({ id: `short-${i}`, heartbeatTimeoutMs: 1_000 }),
        ),
      );
      const report = await sweep(deps(created + 60_000, local));
      expect(report.ended).toBe(10);
      expect(report.rowsRead).toBe(20);
    } finally {
      await local.close();
    }
  });
});

describe('races', () => {
  it('of several sweepers and the workers completing: exactly one terminal state each', async () => {
    let workersWon = 0;
    let sweepersWon = 0;
    for (let trial = 0; trial < 5; trial++) {
      const created = Date.now();
      const ops = await Promise.all(
        Array.from({ length: 20 }, () => store.create({ id: id(), heartbeatTimeoutMs: 1_000 })),
      );
      const names = ops.map((o) => o.operation.name);
      const response = { '@type': 'type.googleapis.com/test.Result', trial };
      // A quarter of the workers never report (only a sweeper can end those); the others race
      // the three sweepers.
      const completions = names.map((name, i) =>
        i % 4 === 0
          ? Promise.resolve({ applied: false, operation: undefined })
          : store.complete(name, { response }),
      );
      const sweeps = [1, 2, 3].map(() => sweep(deps(created + 5_000)));
      const completed = await Promise.all(completions);
      const reports = await Promise.all(sweeps);
      const endedBySweepers = reports.reduce((sum, r) => sum + r.ended, 0);
      const appliedByWorkers = completed.filter((c) => c.applied).length;
      workersWon += appliedByWorkers;
      sweepersWon += endedBySweepers;
      // Every operation ended once: by its worker or by exactly one sweeper.
      expect(endedBySweepers + appliedByWorkers).toBe(names.length);
      let deadlineExceeded = 0;
      for (const [i, name] of names.entries()) {
        const stored = (await store.get(name)).operation;
        expect(stored.done).toBe(true);
        if (completed[i]?.applied) {
          expect(stored.response).toEqual(response);
          expect(stored.error).toBeUndefined();
        } else {
          expect(stored.error?.code).toBe(Code.DEADLINE_EXCEEDED);
          if (i % 4 !== 0) expect(completed[i]?.operation).toEqual(stored);
          deadlineExceeded++;
        }
      }
      expect(endedBySweepers).toBe(deadlineExceeded);
      // Whatever came later changes nothing.
      for (const name of names) {
        const before = (await store.get(name)).operation;
        await store.complete(name, { error: { code: Code.INTERNAL, message: 'late' } });
        expect((await store.get(name)).operation).toEqual(before);
      }
    }
    // Both kinds of winner occurred (the unreported quarter can only go to the sweepers).
    expect(workersWon).toBeGreaterThan(0);
    expect(sweepersWon).toBeGreaterThanOrEqual(5 * 5);
    // Three hundred sequential store calls: minutes on a saturated machine. (A test left running
    // past its timeout would go on sweeping the table under the next one.)
  }, 300_000);

  it('of a heartbeat and a sweep: the operation is ended only if no heartbeat came', async () => {
    const outcomes = { beatFirst: 0, sweptFirst: 0 };
    // Trials race the two at once; the first two put one clearly ahead of the other (the
    // heartbeat, then the sweep), so that both outcomes are seen whatever the machine does.
    for (let trial = 0; trial < 12; trial++) {
      const created = Date.now();
      const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
      const name = op.operation.name;
      const at = created + 1_500;
      const beatNow = () => store.heartbeat(name, { time: new Date(at) });
      const sweepNow = () => sweep(deps(at));
      let beat: Awaited<ReturnType<typeof beatNow>>;
      if (trial === 0) {
        beat = await beatNow();
        await sweepNow();
      } else if (trial === 1) {
        await sweepNow();
        beat = await beatNow();
      } else {
        [beat] = await Promise.all([beatNow(), sweepNow()]);
      }
      const stored = (await store.get(name)).operation;
      // Exactly one of them took effect: a heartbeat that landed keeps the operation running (the
      // sweep re-checks it), and one that came after the sweep ended it is refused.
      expect(stored.done, `trial ${trial}`).toBe(!beat.applied);
      if (stored.done) expect(stored.error?.code).toBe(Code.DEADLINE_EXCEEDED);
      outcomes[stored.done ? 'sweptFirst' : 'beatFirst']++;
    }
    expect(outcomes.beatFirst).toBeGreaterThan(0);
    expect(outcomes.sweptFirst).toBeGreaterThan(0);
  });
});

describe('worker clocks', () => {
  it('counts an emitTime beyond publishTime + 60 s at publishTime, and others as given', () => {
    const publish = '2026-11-28T10:00:00.000Z';
    expect(countedEmitTime('2100-01-01T00:00:00Z', publish).toISOString()).toBe(publish);
    expect(countedEmitTime('2026-11-28T10:00:59.000Z', publish).toISOString()).toBe(
      '2026-11-28T10:00:59.000Z',
    );
    expect(countedEmitTime('2026-11-28T09:59:00.000Z', publish).toISOString()).toBe(
      '2026-11-28T09:59:00.000Z',
    );
    expect(countedEmitTime('2100-01-01T00:00:00.000Z').toISOString()).toBe(
      '2100-01-01T00:00:00.000Z',
    );
  });
});

describe('the sweeper function', () => {
  it('runs one sweep per POST under the functions framework and answers with what it did', async () => {
    const fn = await startFunction('sweeper', env);
    try {
      const op = await store.create({ id: id(), heartbeatTimeoutMs: 1_000 });
      await until(
        async () => {
          const res = await fetch(fn.url, { method: 'POST' });
          expect(res.status).toBe(200);
          const report = (await res.json()) as { ended: number; rowsRead: number };
          expect(report.rowsRead).toBeGreaterThanOrEqual(0);
          return (await store.get(op.operation.name)).operation.done;
        },
        30_000,
        'ended by the function',
      );
      expect((await store.get(op.operation.name)).operation.error?.code).toBe(
        Code.DEADLINE_EXCEEDED,
      );
      await announced(op.operation.name);
      expect(fn.output()).toContain('"message":"operation deadline exceeded"');
      const wrong = await fetch(fn.url, { method: 'PUT' });
      expect(wrong.status).toBe(400);
    } finally {
      await fn.stop();
    }
  });
});
