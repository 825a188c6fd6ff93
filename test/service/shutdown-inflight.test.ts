/**
 * A request the operations function received before SIGINT/SIGTERM is in flight: it is answered
 * as usual (a wait with its latest state), not refused with 503, even when the handler sees it
 * only after the signal because its body was still arriving. Only requests that arrive after the
 * signal are refused.
 *
 * The interleaving is forced, not hoped for: the request asks `Expect: 100-continue`, and Node's
 * HTTP server sends `100 Continue` in the same turn as it emits the request, so the client knows
 * the server has received it; the signal is sent then, and the body only once the function has
 * logged that it is shutting down.
 */
import { describe, expect, it } from 'vitest';
import { until } from '../support/event-stack.js';
import { slowBodyPost, startOperationsStack } from '../support/operations-stack.js';

const progress = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });

describe('shutdown with a request in flight', () => {
  it.each([
    ['warm', true],
    ['cold (the wait is its first request)', false],
  ])(
    'a wait received before SIGINT by a %s instance, whose body arrives after the signal, is answered with the latest state',
    async (_, warm) => {
      const s = await startOperationsStack();
      try {
        const { operation } = await s.store.create({ metadata: progress(1) });
        if (warm) expect((await fetch(`${s.url}/v1/${operation.name}`)).status).toBe(200);
        const wait = slowBodyPost(s.url, `/v1/${operation.name}:wait`, { timeout: '120s' });
        await wait.received;
        const exit = new Promise<number | null>((r) => s.fn.process.once('exit', r));
        s.fn.process.kill('SIGINT');
        await until(() => s.fn.output().includes('"message":"shutting down"'), 30_000, 'shutdown');
        wait.sendBody();
        const reply = await wait.reply;
        expect(reply).toEqual({
          status: 200,
          body: { name: operation.name, done: false, metadata: progress(1) },
        });
        expect(await exit).toBe(0);
      } finally {
        await s.stop();
      }
    },
    120_000,
  );
});
