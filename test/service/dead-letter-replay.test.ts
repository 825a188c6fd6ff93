/**
 * Automatic replay of dead letters (shared/service/dead-letters/replay.ts), on the emulators: which
 * dead letters the handler schedules (the subscription policy's, whose last error was transient),
 * when (backoff by the replays so far), and what a sweep does with them (replays those whose
 * operation runs, leaves the others for a person).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { Code } from '../../shared/sdk/errors.js';
import { Messaging, type ReceivedMessage } from '../../shared/sdk/messaging.js';
import { storeDeadLetter } from '../../shared/service/dead-letters/handler.js';
import { POLICY_DELIVERY_COUNT } from '../../shared/service/dead-letters/record.js';
import { replayDueDeadLetters } from '../../shared/service/dead-letters/replay.js';
import type { Config } from '../../shared/service/runtime/config.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import {
  BigtableOperationStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { testConfig, uniqueSuffix } from '../support/env.js';
import { until } from '../support/event-stack.js';

let config: Config;
let store: BigtableOperationStore;
let deadLetters: DeadLetterStore;
let messaging: Messaging;
const tapName = `events-tap-${uniqueSuffix()}`;
const published: ReceivedMessage[] = [];
let tap: { close(): Promise<void> } | undefined;

beforeAll(async () => {
  config = testConfig();
  await ensureTable(config);
  store = new BigtableOperationStore(config);
  deadLetters = new DeadLetterStore(config, Date.now, store.connection);
  messaging = new Messaging(config);
  await messaging.ensureTopic(config.topics.events);
  await messaging.ensurePullSubscription(tapName, config.topics.events);
  tap = messaging.listen(tapName, (message) => {
    message.ack();
    published.push(message);
  });
});

afterAll(async () => {
  await tap?.close();
  await messaging?.deleteSubscription(tapName).catch(() => undefined);
  await messaging?.deleteTopic(config.topics.events).catch(() => undefined);
  await messaging?.close();
  await store?.close();
  await deleteTable(config);
});

/** A message the events subscription's policy dead-lettered, as the dead-letter push brings it. */
function policyMessage(operation: string, extra: Record<string, string> = {}) {
  const body = {
    operation,
    type: 'succeeded',
    eventId: randomUUID(),
    emitTime: new Date().toISOString(),
  };
  return {
    data: Buffer.from(JSON.stringify(body)),
    attributes: { operation, type: 'succeeded', [POLICY_DELIVERY_COUNT]: '5', ...extra },
    messageId: String(Math.floor(Math.random() * 1e12)),
    publishTime: new Date().toISOString(),
  };
}

describe('dead letters of transient failures', () => {
  it('are scheduled for replay; permanent ones and those replayed enough are not', async () => {
    const name = `operations/sched-${uniqueSuffix()}`;
    const unavailable = policyMessage(name);
    await deadLetters.rememberFailure(unavailable.data, {
      code: Code.UNAVAILABLE,
      message: 'Bigtable unavailable: deadline exceeded',
    });
    const unrecorded = policyMessage(name);
    const unknown = policyMessage(name);
    await deadLetters.rememberFailure(unknown.data, {
      code: Code.NOT_FOUND,
      message: `operation ${name} not found`,
    });
    const again = policyMessage(name, { lroAutoReplays: '2' });
    const enough = policyMessage(name, {
      lroAutoReplays: String(defaults.deadLetterAutoReplaysMax),
    });
    const deps = { store: deadLetters };
    const entries = {
      unavailable: await storeDeadLetter(unavailable, deps),
      unrecorded: await storeDeadLetter(unrecorded, deps),
      unknown: await storeDeadLetter(unknown, deps),
      again: await storeDeadLetter(again, deps),
      enough: await storeDeadLetter(enough, deps),
    };
    expect(entries.unavailable.reason).toBe(
      'delivery attempts exhausted: Bigtable unavailable: deadline exceeded',
    );
    const delay = (entry: (typeof entries)[keyof typeof entries]) =>
      entry.autoReplayAt && entry.autoReplayAt.getTime() - entry.deadLetterTime.getTime();
    expect({
      unavailable: delay(entries.unavailable),
      unrecorded: delay(entries.unrecorded),
      unknown: delay(entries.unknown),
      again: delay(entries.again),
      enough: delay(entries.enough),
    }).toEqual({
      unavailable: 0,
      unrecorded: 0,
      unknown: undefined,
      again: 2 * defaults.deadLetterAutoReplayInitialMs,
      enough: undefined,
    });
    // Stored as scheduled, and indexed by due time.
    expect((await deadLetters.get(entries.unrecorded.id)).autoReplayAt).toEqual(
      entries.unrecorded.autoReplayAt,
    );
    const dueNow = (await deadLetters.listReplayDue(new Date(), 1000)).map((d) => d.id);
    expect(dueNow).toContain(entries.unavailable.id);
    expect(dueNow).toContain(entries.unrecorded.id);
    expect(dueNow).not.toContain(entries.unknown.id);
    expect(dueNow).not.toContain(entries.again.id);
    const later = new Date(Date.now() + 3 * defaults.deadLetterAutoReplayInitialMs);
    expect((await deadLetters.listReplayDue(later, 1000)).map((d) => d.id)).toContain(
      entries.again.id,
    );
    for (const entry of Object.values(entries)) {
      await deadLetters.discard(entry.id);
    }
    for (const due of await deadLetters.listReplayDue(later, 1000)) {
      await deadLetters.unscheduleReplay(due.key);
    }
  });

  it('are replayed by a sweep while their operation runs, and only then', async () => {
    const running = (await store.create({ id: `running-${uniqueSuffix()}` })).operation.name;
    const ended = (await store.create({ id: `ended-${uniqueSuffix()}` })).operation.name;
    await store.complete(ended, { error: { code: 1, message: 'cancelled' } });
    const missing = `operations/missing-${uniqueSuffix()}`;
    const deps = { store: deadLetters };
    const entries = {
      running: await storeDeadLetter(policyMessage(running), deps),
      ended: await storeDeadLetter(policyMessage(ended), deps),
      missing: await storeDeadLetter(policyMessage(missing), deps),
    };
    const report = await replayDueDeadLetters({
      deadLetters,
      store,
      messaging,
      topics: { events: config.topics.events },
    });
    expect(report).toEqual({ replayed: 1, dropped: 2, failed: 0 });

    // The running operation's event went to the events topic again, counted, without the
    // attributes the dead-lettering added; its entry is gone.
    await until(() => published.length > 0, 30_000, 'the replay published');
    const [replayed] = published;
    expect(replayed?.data.toString()).toBe(entries.running.data.toString());
    expect(replayed?.attributes).toEqual({
      operation: running,
      type: 'succeeded',
      lroAutoReplays: '1',
    });
    await expect(deadLetters.get(entries.running.id)).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    // The others wait for a person, and leave the index.
    await deadLetters.get(entries.ended.id);
    await deadLetters.get(entries.missing.id);
    expect(await deadLetters.listReplayDue(new Date(), 1000)).toEqual([]);
    expect(
      await replayDueDeadLetters({
        deadLetters,
        store,
        messaging,
        topics: { events: config.topics.events },
      }),
    ).toEqual({ replayed: 0, dropped: 0, failed: 0 });
    expect(published).toHaveLength(1);
  });
});
