/**
 * Orderly shutdown of the operations function under the functions framework: on SIGTERM (Cloud
 * Run scaling down) and SIGINT (Ctrl-C) pending waits are answered with the latest state, watches
 * end with a final event, the listener's subscription is deleted and the process exits 0 within
 * the platform's 10 s.
 */
import { describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { until } from '../support/event-stack.js';
import {
  call,
  type OperationsStack,
  slowBodyPost,
  startOperationsStack,
} from '../support/operations-stack.js';

const progress = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });

/** Opens a watch; resolves `first` with the first operation event, `text` with the whole stream. */
function openWatch(url: string) {
  let firstSeen!: () => void;
  const first = new Promise<void>((r) => (firstSeen = r));
  const text = (async () => {
    const res = await fetch(url, { headers: { accept: 'text/event-stream' } });
    let all = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      all += decoder.decode(chunk, { stream: true });
      if (all.includes('event: operation')) firstSeen();
    }
    return all;
  })();
  return { first, text };
}

function exited(s: OperationsStack): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) =>
    s.fn.process.once('exit', (code) => resolve({ code, ms: Date.now() - started })),
  );
}

describe('shutdown of the operations function', () => {
  it('SIGTERM with 20 waits and a watch pending: 20 answers with the latest state, a final watch event, no subscription left, exit 0 within 10 s', async () => {
    const s = await startOperationsStack();
    try {
      const ops = await Promise.all(
        Array.from({ length: 21 }, (_, i) => s.store.create({ metadata: progress(i) })),
      );
      const watched = ops[20]?.operation.name as string;
      // Each wait in flight before the signal: on a loaded machine a request sent first can reach
      // the server after a later one (the watch's), so the test waits for each 100 Continue.
      const waits = ops
        .slice(0, 20)
        .map(({ operation }) =>
          slowBodyPost(s.url, `/v1/${operation.name}:wait`, { timeout: '120s' }),
        );
      await Promise.all(waits.map((w) => w.received));
      for (const w of waits) w.sendBody();
      const watch = openWatch(`${s.url}/v1/${watched}:watch`);
      await watch.first;
      await until(async () => (await s.waiterSubscriptions()).length === 1, 20_000, 'listener');
      // Progress that nobody announced: the answers must still carry it (read at shutdown).
      for (const { operation } of ops.slice(0, 10)) {
        await s.store.updateMetadata(operation.name, progress(100), {
          emitTime: new Date(),
          eventId: `late-${operation.name}`,
        });
      }

      const exit = exited(s);
      s.fn.process.kill('SIGTERM');
      const replies = await Promise.all(waits.map((w) => w.reply));
      const stream = await watch.text;
      const { code, ms } = await exit;

      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
      replies.forEach((reply, i) => {
        const name = ops[i]?.operation.name;
        expect(reply.body).toEqual({
          name,
          done: false,
          metadata: progress(i < 10 ? 100 : i),
        });
      });
      expect(stream).toContain('event: operation');
      expect(stream).toMatch(
        /event: end\ndata: \{"name":"[^"]+","reason":"shutdown","resumable":true\}\n\n$/,
      );
      expect(code).toBe(0);
      expect(ms).toBeLessThan(10_000);
      expect(await s.waiterSubscriptions()).toEqual([]);
      expect(s.fn.output()).toContain('"message":"shut down"');
    } finally {
      await s.stop();
    }
  }, 120_000);

  it('SIGINT answers a pending wait and deletes the listener subscription too', async () => {
    const s = await startOperationsStack();
    try {
      const { operation } = await s.store.create({ metadata: progress(1) });
      const wait = call<Operation>(s.url, 'POST', `/v1/${operation.name}:wait`, {
        timeout: '120s',
      });
      // The wait is the instance's first request: the listener's subscription exists once the
      // wait has reached the server (a signal sent before that would refuse it, rightly).
      await until(async () => (await s.waiterSubscriptions()).length === 1, 20_000, 'listener');
      const watch = openWatch(`${s.url}/v1/${operation.name}:watch`);
      await watch.first;
      const exit = exited(s);
      s.fn.process.kill('SIGINT');
      const reply = await wait;
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ name: operation.name, done: false, metadata: progress(1) });
      expect(await watch.text).toContain('"reason":"shutdown"');
      expect((await exit).code).toBe(0);
      expect(await s.waiterSubscriptions()).toEqual([]);
    } finally {
      await s.stop();
    }
  }, 120_000);

  it('a watch resumed with Last-Event-ID is not sent the state it already saw', async () => {
    const s = await startOperationsStack();
    try {
      const { operation } = await s.store.create({ metadata: progress(1) });
      const first = await fetch(`${s.url}/v1/${operation.name}:watch`);
      const reader = (first.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      const id = /^id: (\S+)$/m.exec(text)?.[1];
      expect(id).toBeDefined();

      const resumed = await fetch(`${s.url}/v1/${operation.name}:watch`, {
        headers: { 'last-event-id': id as string },
      });
      const done = s.finish(operation.name, { response: progress(2) });
      const body = await resumed.text();
      await done;
      const events = body.split('\n\n').filter((e) => e.includes('event: operation'));
      // Only the change: the unchanged first state is not repeated.
      expect(events).toHaveLength(1);
      expect(events[0]).toContain('"done":true');
      expect(events[0]).toMatch(/^id: \S+$/m);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
