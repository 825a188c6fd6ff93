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
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { until } from '../support/event-stack.js';
import { startOperationsStack } from '../support/operations-stack.js';

const progress = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });

/** A POST whose body is sent only when `sendBody` is called, after `100 Continue` came back. */
function slowBodyPost(url: string, path: string, body: unknown) {
  const payload = JSON.stringify(body);
  let continued!: () => void;
  const received = new Promise<void>((r) => (continued = r));
  let req!: http.ClientRequest;
  const reply = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    req = http.request(
      `${url}${path}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          expect: '100-continue',
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text so that the assertion shows it
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('continue', () => continued());
    req.on('error', reject);
    req.flushHeaders();
  });
  return { received, reply, sendBody: () => req.end(payload) };
}

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
