/**
 * Dead letters end to end: what reaches the dead-letter topic (put there by the subscriber, or
 * by the events subscription's policy) is pushed to the subscriber, kept in Bigtable and served
 * by the API (list newest first, get, replay, discard); a failed store write fails the push.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter, ListDeadLettersResponse } from '../../shared/sdk/dead-letters.js';
import { Code } from '../../shared/sdk/errors.js';
import { storeDeadLetter } from '../../shared/service/dead-letters/handler.js';
import { deadLetterIdOf } from '../../shared/service/dead-letters/record.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { expectError } from '../support/errors.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';

let s: EventStack;
let api: RunningFunction;
let store: DeadLetterStore;

beforeAll(async () => {
  s = await startEventStack({
    maxDeliveryAttempts: 5,
    minimumBackoffSeconds: 1,
    maximumBackoffSeconds: 1,
    messageOrdering: false,
  });
  api = await startFunction('operations', s.env);
  store = new DeadLetterStore(s.config);
});

afterAll(async () => {
  await api?.stop();
  await store?.close();
  await s?.close();
});

async function letterOf(test: (l: DeadLetter) => boolean, timeoutMs = 40_000): Promise<DeadLetter> {
  let found: DeadLetter | undefined;
  await until(
    async () => {
      const reply = await call<ListDeadLettersResponse>(
        api.url,
        'GET',
        '/v1/deadLetters?pageSize=1000',
      );
      found = reply.body.deadLetters?.find(test);
      return found !== undefined;
    },
    timeoutMs,
    'the dead letter',
  );
  return found as DeadLetter;
}

describe('dead-letter store', () => {
  it('keeps an event the subscriber dead-lettered, with its reason, operation and data', async () => {
    const operation = `operations/${randomUUID()}`;
    const body = JSON.stringify({ operation, type: 'exploded', eventId: randomUUID() });
    await s.messaging.publish(s.config.topics.events, Buffer.from(body), {
      attributes: { operation, type: 'exploded' },
    });
    const letter = await letterOf((l) => l.operation === operation);
    expect(letter.name).toMatch(/^deadLetters\/\d{13}-/);
    expect(letter.reason).toMatch(/type/);
    expect(Buffer.from(letter.data, 'base64').toString()).toBe(body);
    expect(letter.event).toEqual(JSON.parse(body));
    expect(letter.attributes).toMatchObject({ operation, type: 'exploded' });
    expect(Date.parse(letter.deadLetterTime)).toBeGreaterThan(Date.now() - 120_000);

    const got = await call(api.url, 'GET', `/v1/${letter.name}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(letter);
    const discarded = await call(api.url, 'DELETE', `/v1/${letter.name}`);
    expect(discarded.status).toBe(200);
    expect(discarded.body).toEqual({});
    expectError(await call(api.url, 'GET', `/v1/${letter.name}`), 404, 'NOT_FOUND');
    expectError(await call(api.url, 'DELETE', `/v1/${letter.name}`), 404, 'NOT_FOUND');
  });

  it('keeps an event the policy dead-lettered with the last error, and replay applies it once its operation exists', async () => {
    const id = `late-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    await s.publishEvent(event(name, 'succeeded', { response: progress(9) }));
    const letter = await letterOf((l) => l.operation === name, 60_000);
    expect(letter.reason).toMatch(/^delivery attempts exhausted: /);
    expect(letter.reason).toContain(`${name} not found`);
    expect(letter.attributes.CloudPubSubDeadLetterSourceDeliveryCount).toBe('5');
    expect(letter.event).toMatchObject({ operation: name, type: 'succeeded' });

    // A slow create: it began before the event was published (its create time says so) and
    // wrote the operation only after the event's deliveries were exhausted, so the event is this
    // operation's. (An operation created after the event was published never takes it:
    // event-identity-replay.test.ts.)
    const published = Date.parse(
      letter.attributes.CloudPubSubDeadLetterSourceTopicPublishTime ?? '',
    );
    expect(Number.isFinite(published)).toBe(true);
    const slowCreate = new BigtableOperationStore(s.config, () => published - 1);
    await slowCreate.create({ id });
    await slowCreate.close();
    const replayed = await call(api.url, 'POST', `/v1/${letter.name}:replay`, {});
    expect(replayed.status).toBe(200);
    expect(replayed.body).toEqual({});
    await until(
      async () => (await s.store.get(name)).operation.done,
      30_000,
      'replayed event applied',
    );
    expect((await s.store.get(name)).operation.response).toEqual(progress(9));
    expectError(await call(api.url, 'GET', `/v1/${letter.name}`), 404, 'NOT_FOUND');
  }, 120_000);

  it('lists newest first with signed page tokens', async () => {
    const base = Date.now() - 1000;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const time = new Date(base + i);
      const entryId = deadLetterIdOf(time, `page-${i}`);
      ids.push(entryId);
      await store.put({
        id: entryId,
        reason: `reason ${i}`,
        data: Buffer.from(`{"n":${i}}`),
        attributes: { n: String(i) },
        deadLetterTime: time,
      });
    }
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const reply = await call<ListDeadLettersResponse>(
        api.url,
        'GET',
        `/v1/deadLetters?pageSize=2${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
      );
      expect(reply.status).toBe(200);
      expect(reply.body.deadLetters.length).toBeLessThanOrEqual(2);
      seen.push(...reply.body.deadLetters.map((l) => l.name.slice('deadLetters/'.length)));
      token = reply.body.nextPageToken;
      pages++;
    } while (token && pages < 100);
    const mine = seen.filter((id) => ids.includes(id));
    expect(mine).toEqual([...ids].reverse());
    const times = seen.map((id) => Number(id.slice(0, 13)));
    expect(times).toEqual([...times].sort((a, b) => a - b));

    expectError(
      await call(api.url, 'GET', '/v1/deadLetters?pageToken=forged'),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(await call(api.url, 'GET', '/v1/deadLetters?pageSize=-1'), 400, 'INVALID_ARGUMENT');
    expectError(await call(api.url, 'GET', '/v1/deadLetters?colour=red'), 400, 'INVALID_ARGUMENT');
  });

  it('answers 404 for unknown IDs, 400 for malformed ones, 405 for other methods', async () => {
    const unknown = deadLetterIdOf(new Date(), 'nobody');
    expectError(await call(api.url, 'GET', `/v1/deadLetters/${unknown}`), 404, 'NOT_FOUND');
    expectError(await call(api.url, 'DELETE', `/v1/deadLetters/${unknown}`), 404, 'NOT_FOUND');
    expectError(
      await call(api.url, 'POST', `/v1/deadLetters/${unknown}:replay`, {}),
      404,
      'NOT_FOUND',
    );
    expectError(await call(api.url, 'GET', '/v1/deadLetters/%3Cimg%3E'), 400, 'INVALID_ARGUMENT');
    expectError(
      await call(api.url, 'POST', `/v1/deadLetters/${unknown}:replay`, { all: true }),
      400,
      'INVALID_ARGUMENT',
    );
    expect((await call(api.url, 'PUT', '/v1/deadLetters')).status).toBe(405);
    expectError(
      await call(api.url, 'POST', `/v1/deadLetters/${unknown}:explode`, {}),
      404,
      'NOT_FOUND',
    );
  });

  it('publishes once when one entry is replayed several times at once', async () => {
    const time = new Date();
    const entryId = deadLetterIdOf(time, `race-${randomUUID()}`);
    await store.put({
      id: entryId,
      reason: 'race',
      data: Buffer.from('{}'),
      attributes: {},
      deadLetterTime: time,
    });
    let published = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        store.replay(entryId, async () => {
          published++;
          await new Promise((r) => setTimeout(r, 50));
        }),
      ),
    );
    expect(published).toBe(1);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect([Code.ABORTED, Code.NOT_FOUND]).toContain(r.reason.code);
    }
    await expect(store.get(entryId)).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });

  it('keeps the entry when the publish fails, and a later replay can take it', async () => {
    const time = new Date();
    const entryId = deadLetterIdOf(time, `retry-${randomUUID()}`);
    await store.put({
      id: entryId,
      reason: 'r',
      data: Buffer.from('{}'),
      attributes: {},
      deadLetterTime: time,
    });
    await expect(
      store.replay(entryId, async () => {
        throw new Error('topic down');
      }),
    ).rejects.toThrow('topic down');
    expect((await store.get(entryId)).reason).toBe('r');
    let published = 0;
    await store.replay(entryId, async () => {
      published++;
    });
    expect(published).toBe(1);
  });

  it('fails the push when the entry cannot be written, so that Pub/Sub redelivers', async () => {
    const broken = loadConfig({
      ...s.env,
      LRO_BIGTABLE_TABLE: `missing-${randomUUID().slice(0, 8)}`,
    });
    const missing = new DeadLetterStore(broken);
    try {
      await expect(
        storeDeadLetter(
          { data: Buffer.from('{}'), attributes: { lroDeadLetterReason: 'x' }, messageId: '1' },
          { store: missing },
        ),
      ).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    } finally {
      await missing.close();
    }
    // The same over HTTP: a subscriber whose table is missing answers the push with an error.
    const subscriber = await startFunction('subscriber', {
      ...s.env,
      LRO_BIGTABLE_TABLE: broken.bigtable.table,
    });
    try {
      const res = await fetch(
        `${subscriber.url}/projects/${s.config.projectId}/topics/${s.config.topics.deadLetter}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            message: {
              data: Buffer.from('{"operation":"operations/x"}').toString('base64'),
              attributes: { lroDeadLetterReason: 'bad' },
              messageId: '42',
              publishTime: new Date().toISOString(),
            },
            subscription: `projects/${s.config.projectId}/subscriptions/whatever`,
          }),
        },
      );
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      await subscriber.stop();
    }
  });
});
