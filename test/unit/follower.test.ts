/**
 * The wait follower on a fake clock, without emulators: registered before its first read, woken
 * by its wake-up, the safety-net poll on its schedule, the latest state at the deadline, the
 * caller leaving, wake-ups of other operations, stale reads, and the reads and polls it reports;
 * the waiter's reads shared among its followers. Every time here is the fake clock's, so no
 * assertion depends on the machine's speed.
 */
import { describe, expect, it } from 'vitest';
import { Code, LroError } from '../../shared/sdk/errors.js';
import type { Messaging } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import type { NotificationTiming } from '../../shared/sdk/notifications.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import {
  type FollowedHub,
  Follower,
  type FollowOptions,
  type PollSchedule,
  type WaitOutcome,
} from '../../shared/service/wait/follower.js';
import { NotificationHub, type Signal, type SignalHandler } from '../../shared/service/wait/hub.js';
import { Waiter } from '../../shared/service/wait/waiter.js';
import { FakeClock, settle } from '../support/fake-clock.js';

const NAME = 'operations/follower-a';
const OTHER = 'operations/follower-b';
const RESPONSE = { '@type': 'type.googleapis.com/test.Done' };
const progress = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });

/** The wait's defaults: 1 s alone, 10 s (LRO_WAIT_SAFETY_POLL) while wake-ups flow, 1.5x to 10 s. */
const POLL: PollSchedule = {
  initialMs: 1_000,
  notifiedInitialMs: 10_000,
  multiplier: 1.5,
  maxMs: 10_000,
};

/** A hub of wake-ups, healthy unless told otherwise; signals are handed over by the test. */
class FakeHub implements FollowedHub {
  healthy = true;
  readonly carriesState = false;
  readonly handlers = new Map<string, Set<SignalHandler>>();
  register(name: string, handler: SignalHandler): () => void {
    const set = this.handlers.get(name) ?? new Set();
    set.add(handler);
    this.handlers.set(name, set);
    return () => set.delete(handler);
  }
  async ready(): Promise<boolean> {
    return this.healthy;
  }
  registered(name = NAME): number {
    return this.handlers.get(name)?.size ?? 0;
  }
  wake(name = NAME, timing?: NotificationTiming): void {
    const signal: Signal = { type: 'succeeded', name, ...(timing ? { timing } : {}) };
    for (const handler of this.handlers.get(name) ?? []) handler.notify(signal);
  }
}

/** The operation's row, read through `read`; a read can be held until the test releases it. */
class Row {
  operation: Operation = { name: NAME, done: false };
  reads = 0;
  /** Registrations with the hub seen at each read. */
  readonly registeredAtRead: number[] = [];
  hold = false;
  private readonly held: (() => void)[] = [];
  constructor(private readonly hub?: FakeHub) {}
  readonly read = (name: string): Promise<Operation> => {
    this.reads++;
    this.registeredAtRead.push(this.hub?.registered(name) ?? 0);
    const state = structuredClone(this.operation);
    if (!this.hold) return Promise.resolve(state);
    return new Promise((resolve) => this.held.push(() => resolve(state)));
  };
  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }
  complete(): void {
    this.operation = { ...this.operation, done: true, response: RESPONSE };
  }
}

interface Started {
  clock: FakeClock;
  outcome: Promise<WaitOutcome>;
  /** The outcome once settled (undefined before). */
  settled: () => WaitOutcome | Error | undefined;
}

function start(
  row: Row,
  options: {
    hub?: FollowedHub;
    timeoutMs?: number;
    signal?: AbortSignal;
    random?: () => number;
    onChange?: (operation: Operation) => void;
  },
  clock = new FakeClock(),
): Started {
  const follow: FollowOptions = {
    deadline: clock.now() + (options.timeoutMs ?? 300_000),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onChange ? { onChange: options.onChange } : {}),
  };
  const follower = new Follower(NAME, follow, {
    hub: options.hub,
    poll: POLL,
    read: row.read,
    clock,
    // No jitter unless a test asks for it: every delay is the schedule's.
    random: options.random ?? (() => 0.5),
  });
  let result: WaitOutcome | Error | undefined;
  const outcome = follower.run();
  outcome.then(
    (o) => {
      result = o;
    },
    (e: unknown) => {
      result = e as Error;
    },
  );
  return { clock, outcome, settled: () => result };
}

describe('the wait follower', () => {
  it('registers before its first read, so a wake-up that comes before that read returns ends the wait', async () => {
    const hub = new FakeHub();
    const row = new Row(hub);
    row.hold = true;
    const { clock, settled, outcome } = start(row, { hub });
    await settle();
    // The first read is in flight, and the follower was registered before it started.
    expect(row.registeredAtRead).toEqual([1]);
    // The operation completes; its wake-up arrives before the first read returns.
    row.complete();
    hub.wake(NAME, { publishedAt: 1, deliveredAt: 2 });
    expect(row.reads).toBe(2);
    // Both reads return: the first one saw the row running, the wake-up's one saw it done.
    row.release();
    await settle();
    // Woken, not at a poll: no time has passed on the clock.
    expect(settled()).toMatchObject({
      reason: 'done',
      operation: { done: true, response: RESPONSE },
    });
    // The first read and the wake-up's; no poll; the wake-up's timing.
    expect(await outcome).toMatchObject({
      reads: 2,
      polls: 0,
      timing: { publishedAt: 1, deliveredAt: 2 },
    });
    expect(clock.pending).toBe(0);
    expect(hub.registered()).toBe(0);
  });

  it('polls at LRO_WAIT_SAFETY_POLL while wake-ups flow, and at the initial interval when they do not', async () => {
    const hub = new FakeHub();
    const row = new Row(hub);
    const { clock, settled } = start(row, { hub });
    await settle();
    expect(row.reads).toBe(1);
    // The first safety-net poll: not before 10 s, at 10 s.
    await clock.advance(9_999);
    expect(row.reads).toBe(1);
    await clock.advance(1);
    expect(row.reads).toBe(2);
    // Backed off 1.5x, capped at 10 s: the next one 10 s later again.
    await clock.advance(9_999);
    expect(row.reads).toBe(2);
    row.complete();
    await clock.advance(1);
    expect(settled()).toMatchObject({ reason: 'done', reads: 3, polls: 2 });

    // A hub that is not healthy (the listener failed to start): polling carries the wait.
    const down = new FakeHub();
    down.healthy = false;
    const alone = new Row(down);
    const polling = start(alone, { hub: down });
    await settle();
    const readsAt: number[] = [];
    const t0 = polling.clock.now();
    for (let i = 0; i < 3; i++) {
      const before = alone.reads;
      while (alone.reads === before) await polling.clock.advance(250);
      readsAt.push(polling.clock.now() - t0);
    }
    // 1 s, then 1.5x each time.
    expect(readsAt).toEqual([1_000, 2_500, 4_750]);
  });

  it('jitters each poll within 20 % of its interval', async () => {
    for (const [random, at] of [
      [0, 8_000],
      [0.999_999, 11_999],
    ] as const) {
      const hub = new FakeHub();
      const row = new Row(hub);
      const { clock } = start(row, { hub, random: () => random });
      await settle();
      expect(Math.floor((clock.next as number) - clock.now())).toBe(at);
    }
  });

  it('returns the latest state at its timeout, read again since wake-ups carry no progress', async () => {
    const hub = new FakeHub();
    const row = new Row(hub);
    row.operation = { name: NAME, done: false, metadata: progress(1) };
    const { clock, settled } = start(row, { hub, timeoutMs: 5_000 });
    await settle();
    // Progress that no wake-up announces.
    row.operation = { name: NAME, done: false, metadata: progress(2) };
    await clock.advance(4_999);
    expect(settled()).toBeUndefined();
    await clock.advance(1);
    expect(settled()).toEqual({
      reason: 'timeout',
      operation: { name: NAME, done: false, metadata: progress(2) },
      reads: 2,
      polls: 0,
    });
    expect(clock.pending).toBe(0);
    expect(hub.registered()).toBe(0);
  });

  it('stops everything when its caller goes away, leaving no timer and no registration', async () => {
    const hub = new FakeHub();
    const row = new Row(hub);
    const controller = new AbortController();
    const { clock, settled } = start(row, { hub, signal: controller.signal });
    await settle();
    expect(clock.pending).toBe(1);
    expect(hub.registered()).toBe(1);
    controller.abort();
    expect(settled()).toBeUndefined(); // settles on the promise queue
    await settle();
    expect(settled()).toMatchObject({ reason: 'aborted', operation: { done: false }, reads: 1 });
    expect(clock.pending).toBe(0);
    expect(hub.registered()).toBe(0);
    // Nothing runs any more: no poll, no read on a late wake-up.
    hub.wake();
    await clock.advance(600_000);
    expect(row.reads).toBe(1);

    // A caller that leaves before anything was read: CANCELLED.
    const early = new AbortController();
    const pending = new Row(hub);
    pending.hold = true;
    const left = start(pending, { hub, signal: early.signal });
    await settle();
    early.abort();
    expect(left.clock.pending).toBe(0);
    expect(hub.registered()).toBe(0);
    // The call answers once its first read returns.
    pending.release();
    await settle();
    expect(left.settled()).toBeInstanceOf(LroError);
    expect((left.settled() as LroError).code).toBe(Code.CANCELLED);
    expect(left.clock.pending).toBe(0);
    expect(hub.registered()).toBe(0);
  });

  it('ignores the wake-ups of other operations', async () => {
    const listens: unknown[] = [];
    const messaging = {
      ensurePullSubscription: async () => undefined,
      listen: (...args: unknown[]) => {
        listens.push(args);
        return { close: async () => undefined };
      },
      deleteSubscription: async () => undefined,
    } as unknown as Messaging;
    const hub = new NotificationHub(messaging, 'wakeups', { carries: 'wakeups' });
    const row = new Row();
    const { clock, settled } = start(row, { hub });
    await settle();
    expect(hub.healthy).toBe(true);
    expect(listens).toHaveLength(1);
    expect(row.reads).toBe(1);
    hub.dispatch({ type: 'succeeded', name: OTHER });
    await settle();
    expect(row.reads).toBe(1);
    expect(settled()).toBeUndefined();
    // Its own wake-up wakes it.
    row.complete();
    hub.dispatch({ type: 'succeeded', name: NAME });
    await settle();
    expect(settled()).toMatchObject({ reason: 'done', reads: 2, polls: 0 });
    expect(clock.pending).toBe(0);
    await hub.close();
  });

  it('counts its reads and, of those, its safety-net polls', async () => {
    const row = new Row();
    // No hub: polling alone, from 1 s.
    const { clock, settled } = start(row, {});
    await settle();
    await clock.advance(1_000); // poll 1
    await clock.advance(1_500); // poll 2
    row.operation = { name: NAME, done: false, metadata: progress(3) };
    await clock.advance(2_250); // poll 3
    row.complete();
    await clock.advance(3_375); // poll 4
    expect(settled()).toMatchObject({ reason: 'done', reads: 5, polls: 4 });
    expect(row.reads).toBe(5);

    // At the deadline: one more read, which is not a poll.
    const late = new Row();
    const timed = start(late, { timeoutMs: 2_000 });
    await settle();
    await timed.clock.advance(2_000);
    expect(timed.settled()).toMatchObject({ reason: 'timeout', reads: 3, polls: 1 });
  });

  it('discards a read that was in flight when a newer notification arrived (a watch)', async () => {
    const hub = new FakeHub();
    const row = new Row(hub);
    row.operation = { name: NAME, done: false, metadata: progress(1) };
    const seen: unknown[] = [];
    const { settled } = start(row, {
      hub,
      onChange: (operation) => seen.push(operation.metadata),
    });
    await settle();
    expect(seen).toEqual([progress(1)]);
    // A poll's read starts, then a notification brings a newer state before the read returns.
    row.hold = true;
    row.operation = { name: NAME, done: false, metadata: progress(2) };
    const handler = [...(hub.handlers.get(NAME) ?? [])][0] as SignalHandler;
    handler.resync();
    expect(row.reads).toBe(2);
    handler.notify({
      type: 'metadata',
      name: NAME,
      operation: { name: NAME, done: false, metadata: progress(3) },
    });
    row.release();
    await settle();
    // The read's older state does not overwrite the notification's.
    expect(seen).toEqual([progress(1), progress(3)]);
    expect(settled()).toBeUndefined();
  });
});

describe('the waiter', () => {
  it('shares one read among the waits of an operation woken by one wake-up', async () => {
    let gets = 0;
    let operation: Operation = { name: NAME, done: false };
    const store = {
      get: async () => {
        gets++;
        return { operation: structuredClone(operation) };
      },
    } as unknown as OperationStore;
    const messaging = {
      ensurePullSubscription: async () => undefined,
      listen: () => ({ close: async () => undefined }),
      deleteSubscription: async () => undefined,
    } as unknown as Messaging;
    const hub = new NotificationHub(messaging, 'wakeups', { carries: 'wakeups' });
    const clock = new FakeClock();
    const waiter = new Waiter({ store, hub, clock });
    const waits = [
      waiter.wait(NAME, { timeoutMs: 60_000 }),
      waiter.wait(NAME, { timeoutMs: 60_000 }),
    ];
    await settle();
    expect(waiter.active).toBe(2);
    // Their first reads started together: one read for both.
    expect(gets).toBe(1);
    operation = { name: NAME, done: true, response: RESPONSE };
    hub.dispatch({ type: 'succeeded', name: NAME });
    const outcomes = await Promise.all(waits);
    // One more read for both; each wait counts the two reads it waited on.
    expect(gets).toBe(2);
    expect(waiter.reads).toBe(2);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ reason: 'done', reads: 2, polls: 0 });
    }
    expect(waiter.active).toBe(0);
    expect(clock.pending).toBe(0);
    await hub.close();
  });
});
