/**
 * A dead letter is replayed once however many `:replay` requests race for it: six concurrent
 * requests to the operations function under the functions framework, and the messages that
 * reach the real events topic counted by a pull subscription on it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messaging } from '../../shared/sdk/messaging.js';
import { deadLetterIdOf } from '../../shared/service/dead-letters/record.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import { deleteTable, ensureTable } from '../../shared/service/store/bigtable/operation-store.js';
import { testEnv } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';
import { collectTopic, type TopicCollector } from '../support/pipeline.js';

let config: Config;
let messaging: Messaging;
let deadLetters: DeadLetterStore;
let api: RunningFunction;
let events: TopicCollector;

beforeAll(async () => {
  const env = testEnv();
  config = loadConfig(env);
  messaging = new Messaging(config);
  await Promise.all([ensureTable(config), messaging.ensureTopic(config.topics.events)]);
  events = await collectTopic(messaging, config.topics.events);
  deadLetters = new DeadLetterStore(config);
  api = await startFunction('operations', env);
});

afterAll(async () => {
  await api?.stop();
  await events?.close();
  await deadLetters?.close();
  await messaging?.deleteTopic(config.topics.events);
  await messaging?.close();
  await deleteTable(config);
});

describe('replaying one dead letter', () => {
  it('publishes it to the events topic once when six replays race, and removes it', async () => {
    const operation = `operations/${randomUUID()}`;
    const data = JSON.stringify({ operation, type: 'succeeded', eventId: randomUUID() });
    const time = new Date();
    const id = deadLetterIdOf(time, randomUUID());
    await deadLetters.put({
      id,
      reason: 'delivery attempts exhausted: UNAVAILABLE',
      operation,
      data: Buffer.from(data),
      attributes: { operation, type: 'succeeded' },
      deadLetterTime: time,
    });

    const replies = await Promise.all(
      Array.from({ length: 6 }, () => call(api.url, 'POST', `/v1/deadLetters/${id}:replay`, {})),
    );
    const statuses = replies.map((r) => r.status).sort();
    // One replay publishes; the others find it leased (409 ABORTED) or gone (404).
    expect(statuses.filter((status) => status === 200)).toEqual([200]);
    for (const reply of replies.filter((r) => r.status !== 200)) {
      expect([409, 404], JSON.stringify(reply.body)).toContain(reply.status);
      expect(['ABORTED', 'NOT_FOUND']).toContain(reply.body.error.status);
    }

    // Every publish the replays made was accepted before they answered.
    await events.settle();
    const replayed = events.messages.filter((m) => m.data.toString() === data);
    expect(replayed).toHaveLength(1);
    expect(replayed[0]?.attributes).toMatchObject({ operation, type: 'succeeded' });
    expect((await call(api.url, 'GET', `/v1/deadLetters/${id}`)).status).toBe(404);
  });
});
