/**
 * The event pipeline through the real path: events published to the Pub/Sub emulator are pushed
 * to the subscriber running under the functions framework, applied to the Bigtable emulator and
 * announced on the notifications topic.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { Code } from '../../shared/sdk/errors.js';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import type { Operation } from '../../shared/sdk/model.js';
import { DEAD_LETTER_ATTRIBUTES } from '../../shared/service/events/subscriber.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { doneOperation, postPush, pushBody, result, shuffled } from '../support/pipeline.js';

let s: EventStack;

beforeAll(async () => {
  s = await startEventStack({
    maxDeliveryAttempts: 5,
    minimumBackoffSeconds: 1,
    maximumBackoffSeconds: 1,
    // The subscriber does not depend on delivery order (emitTime orders metadata, the first
    // terminal event wins), and the emulator pushes ordered messages several times slower; the
    // ordered path is exercised by reporter.test.ts.
    messageOrdering: false,
  });
});

afterAll(async () => {
  await s?.close();
});

describe('event pipeline', () => {
  it('applies progress then success and announces each change', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    await s.publishEvent(event(operation.name, 'metadata', { metadata: progress(1) }));
    await until(
      async () => (await s.store.get(operation.name)).operation.metadata?.step === 1,
      15_000,
      'progress applied',
    );
    await s.publishEvent(
      event(operation.name, 'succeeded', { metadata: progress(2), response: result('ok') }),
    );
    const done = await doneOperation(s.store, operation.name);
    expect(done).toEqual({
      name: operation.name,
      done: true,
      metadata: progress(2),
      response: result('ok'),
    });
    // Notifications carry no order (docs/contracts.md, contract 3): both arrive, in either order.
    const mine = () => s.notifications.filter((n) => n.operation.name === operation.name);
    await until(() => mine().length >= 2, 10_000, 'both notifications');
    expect(
      mine()
        .map((n) => n.type)
        .sort(),
    ).toEqual(['metadata', 'succeeded']);
    expect(mine().find((n) => n.type === 'metadata')?.operation).toEqual({
      name: operation.name,
      done: false,
      metadata: progress(1),
    });
    expect(mine().find((n) => n.type === 'succeeded')?.operation).toEqual(done);
    // Each line is written after its announcement went out: a notification can be here first.
    const appliedLines = () =>
      s.subscriber
        .output()
        .split('\n')
        .filter((line) => line.includes(`"operation":"${operation.name}"`))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry.message === 'event applied');
    await until(() => appliedLines().length >= 2, 10_000, 'both "event applied" lines');
    // In either order too: the success, published once the progress was stored, can be announced
    // (and its line written) before the progress's announcement is.
    const applied = appliedLines();
    expect(
      applied
        .map((entry) => [entry.severity, entry.type, entry.outcome])
        .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    ).toEqual([
      ['INFO', 'metadata', 'applied'],
      ['INFO', 'succeeded', 'applied'],
    ]);
    for (const entry of applied) {
      expect(entry.eventId).toEqual(expect.any(String));
      expect(entry.messageId).toEqual(expect.any(String));
      expect(entry.applyLatencyMs).toEqual(expect.any(Number));
      expect(entry.applyLatencyMs as number).toBeGreaterThanOrEqual(0);
    }
  });

  it('keeps the code, message and details of a failure', async () => {
    const { operation } = await s.store.create();
    const error = {
      code: 9,
      message: 'quota of the project exhausted',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'QUOTA',
          domain: 'example.com',
          metadata: { limit: '10' },
        },
        { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ url: 'https://example.com' }] },
      ],
    };
    await s.publishEvent(event(operation.name, 'failed', { error }));
    expect(await doneOperation(s.store, operation.name)).toEqual({
      name: operation.name,
      done: true,
      error,
    });
    await until(
      () => s.notifications.some((n) => n.operation.name === operation.name && n.type === 'failed'),
      10_000,
      'failed notification',
    );
  });

  it('dead-letters malformed messages with the reason and still applies the messages after them', async () => {
    const { operation } = await s.store.create();
    const name = operation.name;
    const attributes = { operation: name, type: 'metadata' };
    const bad: [string, Buffer][] = [
      ['not JSON', Buffer.from('{"operation": ')],
      [
        'schema violation',
        Buffer.from(
          JSON.stringify(event(name, 'failed', { error: { code: 0, message: 'not a failure' } })),
        ),
      ],
      [
        'exceeds',
        Buffer.from(
          JSON.stringify(
            event(name, 'metadata', {
              metadata: { ...progress(1), pad: 'x'.repeat(defaults.eventMaxBytes) },
            }),
          ),
        ),
      ],
      [
        'disagrees',
        Buffer.from(
          JSON.stringify(event(name, 'succeeded', { response: result('wrong attributes') })),
        ),
      ],
    ];
    const badIds: string[] = [];
    for (const [, data] of bad) {
      badIds.push(
        await s.messaging.publish(s.config.topics.events, data, { attributes, orderingKey: name }),
      );
    }
    await s.publishEvent(event(name, 'metadata', { metadata: progress(7) }));
    await s.publishEvent(
      event(name, 'succeeded', { metadata: progress(8), response: result('ok') }),
    );
    expect(await doneOperation(s.store, name)).toEqual({
      name,
      done: true,
      metadata: progress(8),
      response: result('ok'),
    });

    const letters = await s.readDeadLetters(bad.length);
    const bySource = new Map(
      letters.map((m) => [m.attributes[DEAD_LETTER_ATTRIBUTES.messageId], m] as const),
    );
    bad.forEach(([reason, data], i) => {
      const letter = bySource.get(badIds[i]);
      expect(letter, reason).toBeDefined();
      expect(letter?.data.equals(data)).toBe(true);
      expect(letter?.attributes[DEAD_LETTER_ATTRIBUTES.reason]).toContain(reason);
      expect(letter?.attributes.operation).toBe(name);
    });
    // The ERROR line is written once the dead letter is published, so its copy may reach this
    // process before the subscriber's line does: wait for each line.
    const errorLines = () =>
      s.subscriber
        .output()
        .split('\n')
        .filter((line) => line.includes('"severity":"ERROR"'));
    await until(
      () => badIds.every((id) => errorLines().some((line) => line.includes(`"messageId":"${id}"`))),
      30_000,
      'an ERROR line with the message ID of each dead-lettered message',
    );
  });

  it('accepts the Eventarc CloudEvent and the raw push body, and fails deliveries for unknown operations', async () => {
    const eventarc = (await s.store.create()).operation.name;
    const raw = (await s.store.create()).operation.name;
    const body = (name: string) =>
      JSON.stringify(event(name, 'succeeded', { response: result(name) }));
    const messageId = randomUUID();
    const cloudEvent = await fetch(s.subscriber.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-id': messageId,
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
        'ce-source': `//pubsub.googleapis.com/projects/${s.config.projectId}/topics/${s.config.topics.events}`,
        'ce-time': new Date().toISOString(),
      },
      body: JSON.stringify(
        pushBody(body(eventarc), { operation: eventarc, type: 'succeeded' }, messageId),
      ),
    });
    expect(cloudEvent.status).toBeLessThan(300);
    const push = await postPush(s.stack.pushEndpoint, pushBody(body(raw), {}, randomUUID()));
    expect(push.status).toBeLessThan(300);
    expect((await s.store.get(eventarc)).operation.response).toEqual(result(eventarc));
    expect((await s.store.get(raw)).operation.response).toEqual(result(raw));

    const unknown = `operations/${randomUUID()}`;
    const failed = await postPush(s.stack.pushEndpoint, pushBody(body(unknown), {}, randomUUID()));
    expect(failed.status).toBeGreaterThanOrEqual(500);
  });

  it('a worker with nothing but @google-cloud/pubsub drives an operation to done', async () => {
    const { operation } = await s.store.create();
    const pubsub = new PubSub({
      projectId: s.config.projectId,
      apiEndpoint: s.env.PUBSUB_EMULATOR_HOST ?? '',
      emulatorMode: true,
    });
    const topic = pubsub.topic(s.config.topics.events, { messageOrdering: true });
    try {
      for (const [type, fields] of [
        ['metadata', { metadata: progress(50) }],
        ['succeeded', { metadata: progress(100), response: result('raw') }],
      ] as const) {
        await topic.publishMessage({
          json: {
            operation: operation.name,
            type,
            eventId: randomUUID(),
            emitTime: new Date().toISOString(),
            ...fields,
          },
          attributes: { operation: operation.name, type },
          orderingKey: operation.name,
        });
      }
    } finally {
      await pubsub.close();
    }
    expect(await doneOperation(s.store, operation.name)).toEqual({
      name: operation.name,
      done: true,
      metadata: progress(100),
      response: result('raw'),
    });
  });

  it.concurrent('ends 200 operations in exactly the expected states under duplicates and shuffled delivery', async () => {
    const count = 200;
    const created = await Promise.all(
      Array.from({ length: count }, () => s.store.create({ metadata: progress(0) })),
    );
    const expected = new Map<string, Operation>();
    const copies: WorkerEventInput[] = [];
    const base = Date.now();
    created.forEach(({ operation: { name } }, i) => {
      // Running operations get two progress events; finished ones one, then the terminal event.
      const steps = i % 5 === 4 ? [1, 2] : [1];
      const events: WorkerEventInput[] = steps.map((step) =>
        event(name, 'metadata', {
          metadata: progress(step),
          emitTime: new Date(base + step).toISOString(),
        }),
      );
      if (i % 5 === 4) {
        expected.set(name, { name, done: false, metadata: progress(2) });
      } else if (i % 4 === 3) {
        const error = { code: 13, message: `failure ${i}`, details: [] };
        events.push(
          event(name, 'failed', {
            metadata: progress(2),
            error,
            emitTime: new Date(base + 3).toISOString(),
          }),
        );
        expected.set(name, { name, done: true, metadata: progress(2), error });
      } else {
        events.push(
          event(name, 'succeeded', {
            metadata: progress(2),
            response: result(name),
            emitTime: new Date(base + 3).toISOString(),
          }),
        );
        expected.set(name, { name, done: true, metadata: progress(2), response: result(name) });
      }
      for (const e of events) {
        const times = 1 + Math.floor(Math.random() * 3);
        for (let k = 0; k < times; k++) copies.push(e);
      }
    });
    copies.splice(0, copies.length, ...shuffled(copies));
    // A quarter of the copies go through Pub/Sub, the rest straight to the push endpoint, so
    // that copies of one event also arrive concurrently from two sides. (The emulator pushes
    // about one message at a time, so its share bounds the test's duration.)
    const viaPubSub = copies.filter((_, i) => i % 4 === 0);
    const direct = copies.filter((_, i) => i % 4 !== 0);
    const posting = (async () => {
      const queue = [...direct];
      const statuses: number[] = [];
      await Promise.all(
        Array.from({ length: 24 }, async () => {
          for (let e = queue.shift(); e; e = queue.shift()) {
            for (let attempt = 0; attempt < 5; attempt++) {
              const response = await postPush(
                s.stack.pushEndpoint,
                pushBody(JSON.stringify(e), { operation: e.operation, type: e.type }, randomUUID()),
              );
              await response.arrayBuffer();
              statuses.push(response.status);
              if (response.ok) break;
            }
          }
        }),
      );
      return statuses;
    })();
    await Promise.all(viaPubSub.map((e) => s.publishEvent(e)));
    const statuses = await posting;
    expect(statuses.filter((st) => st < 300).length).toBe(direct.length);

    const names = [...expected.keys()];
    const matches = async () => {
      const records = await Promise.all(names.map((name) => s.store.get(name)));
      return records.every((r) => {
        const want = expected.get(r.operation.name);
        if (r.operation.done !== want?.done) return false;
        return want.done || r.operation.metadata?.step === 2;
      });
    };
    try {
      await until(matches, 50_000, 'expected states');
    } catch (err) {
      const records = await Promise.all(names.map((name) => s.store.get(name)));
      const wrong = records.filter(
        (r) => !isDeepStrictEqual(r.operation, expected.get(r.operation.name)),
      );
      throw new Error(
        `${wrong.length} of ${count} operations not as expected, e.g. ${JSON.stringify(wrong[0]?.operation)}`,
        { cause: err },
      );
    }
    const records = await Promise.all(names.map((name) => s.store.get(name)));
    for (const record of records) {
      expect(record.operation).toEqual(expected.get(record.operation.name));
    }
    // Every terminal state was announced.
    await until(
      () =>
        names.every((name) => {
          const want = expected.get(name);
          return (
            !want?.done ||
            s.notifications.some(
              (n) => n.operation.name === name && n.type !== 'metadata' && n.operation.done,
            )
          );
        }),
      15_000,
      'terminal notifications',
    );
    for (const name of names) {
      const want = expected.get(name);
      const announced = s.notifications.filter(
        (n) => n.operation.name === name && n.operation.done,
      );
      for (const n of announced) expect(n.operation).toEqual(want);
    }
  }, 240_000);

  it.concurrent('retries an event for an operation that does not exist, then Pub/Sub dead-letters it', async () => {
    // A stack of its own: failing deliveries slow the emulator's push for the whole subscription.
    const own = await startEventStack({
      maxDeliveryAttempts: 5,
      minimumBackoffSeconds: 1,
      maximumBackoffSeconds: 1,
      messageOrdering: false,
    });
    try {
      const unknown = `operations/${randomUUID()}`;
      await own.publishEvent(event(unknown, 'succeeded', { response: result('never') }));
      const [letter] = await own.readDeadLetters(1, 40_000);
      expect(letter?.attributes.operation).toBe(unknown);
      // Dead-lettered by the subscription's policy after its attempts, not by the subscriber.
      expect(letter?.attributes.CloudPubSubDeadLetterSourceDeliveryCount).toBe('5');
      expect(letter?.attributes[DEAD_LETTER_ATTRIBUTES.reason]).toBeUndefined();
      await expect(own.store.get(unknown)).rejects.toMatchObject({ code: Code.NOT_FOUND });
      const retries = own.subscriber.output().split('unknown operation').length - 1;
      expect(retries).toBe(5);
    } finally {
      await own.close();
    }
  }, 60_000);
});
