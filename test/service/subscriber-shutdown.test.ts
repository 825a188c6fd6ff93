/**
 * Orderly shutdown of the subscriber function: sent SIGTERM (Cloud Run scaling down) while a push
 * delivery is in flight and Bigtable is slow, it still applies that event and answers the push
 * 2xx, and only then exits 0. Without the wait for requests in flight the process would exit at
 * once, cutting the delivery (Pub/Sub would redeliver it, late).
 *
 * The delivery is held in flight deterministically: its headers go first with
 * `Expect: 100-continue`, and the server's 100 Continue says it has the request; the body follows
 * once the shutdown has begun, while this test's own Bigtable emulator is frozen (SIGSTOP), so the
 * event's write waits on it until it is resumed.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Messaging } from '../../shared/sdk/messaging.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { type PrivateBigtable, startPrivateBigtable } from '../faults/support.js';
import { testEnv } from '../support/env.js';
import { event, progress, until } from '../support/event-stack.js';
import { startFunction } from '../support/functions.js';

/** How long Bigtable stays frozen once the held delivery's body is sent (well within 9 s). */
const SLOW_MS = 1_500;

const result = { '@type': 'type.googleapis.com/test.Result', value: 'finished during shutdown' };

function pushOf(event: Record<string, unknown>, subscription: string): string {
  return JSON.stringify({
    message: {
      data: Buffer.from(JSON.stringify(event)).toString('base64'),
      attributes: { operation: String(event.operation), type: String(event.type) },
      messageId: randomUUID(),
      publishTime: new Date().toISOString(),
    },
    subscription,
  });
}

interface Reply {
  status: number;
  at: number;
}

/**
 * A push whose body is sent only when `send()` is called: `accepted` resolves once the server
 * answered 100 Continue (it has the request), `reply` with the final status.
 */
function heldPush(url: string, body: string) {
  const target = new URL(url);
  let accepted!: () => void;
  const acceptedPromise = new Promise<void>((r) => (accepted = r));
  const req = request({
    host: target.hostname,
    port: target.port,
    method: 'POST',
    path: '/',
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      expect: '100-continue',
    },
  });
  const reply = new Promise<Reply>((resolve, reject) => {
    req.on('continue', () => accepted());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: Date.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { accepted: acceptedPromise, reply, send: () => req.end(body) };
}

let bigtable: PrivateBigtable;

beforeAll(async () => {
  bigtable = await startPrivateBigtable();
});

afterAll(async () => {
  bigtable?.resume();
  await bigtable?.stop();
});

describe('shutdown of the subscriber function', () => {
  it('SIGTERM with a slow push delivery in flight: the event is applied, the push answered 2xx, then exit 0', async () => {
    const env = testEnv({ BIGTABLE_EMULATOR_HOST: bigtable.host });
    const config = loadConfig(env);
    await ensureTable(config);
    const messaging = new Messaging(config);
    await messaging.ensureTopic(config.topics.notifications);
    const store = createStore(config);
    const fn = await startFunction('subscriber', env);
    const subscription = `projects/${config.projectId}/subscriptions/direct`;
    try {
      const { operation } = await store.create({ metadata: progress(0) });
      // A first delivery, answered as usual: the function's clients and connections exist.
      const first = heldPush(
        fn.url,
        pushOf(event(operation.name, 'metadata', { metadata: progress(1) }), subscription),
      );
      await first.accepted;
      first.send();
      expect((await first.reply).status).toBeLessThan(300);

      const held = heldPush(
        fn.url,
        pushOf(
          event(operation.name, 'succeeded', { metadata: progress(2), response: result }),
          subscription,
        ),
      );
      await held.accepted;
      // 'close', not 'exit': at 'exit' the last log lines may still be unread in the pipes.
      const exit = new Promise<{ code: number | null; at: number }>((resolve) =>
        fn.process.once('close', (code) => resolve({ code, at: Date.now() })),
      );
      fn.process.kill('SIGTERM');
      await until(
        async () => fn.output().includes('"message":"shutting down"'),
        10_000,
        'the shutdown to begin',
      );
      bigtable.freeze();
      held.send();
      // Bigtable is away for a while: the delivery's write waits on it, past the moment at which
      // a shutdown that did not wait for it would have exited.
      await new Promise((r) => setTimeout(r, SLOW_MS));
      bigtable.resume();

      const reply = await held.reply;
      const { code, at } = await exit;
      expect(reply.status).toBeGreaterThanOrEqual(200);
      expect(reply.status).toBeLessThan(300);
      expect(code).toBe(0);
      expect(reply.at).toBeLessThanOrEqual(at);
      expect(fn.output()).toContain('"message":"shut down"');
      expect((await store.get(operation.name)).operation).toEqual({
        name: operation.name,
        done: true,
        metadata: progress(2),
        response: result,
      });
    } finally {
      bigtable.resume();
      await fn.stop();
      await store.close();
      await messaging.deleteTopic(config.topics.notifications);
      await messaging.close();
      await deleteTable(config);
    }
  }, 120_000);
});
