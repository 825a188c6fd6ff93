/**
 * The wait through real HTTP: woken by the notification (not the next poll), the latest state at
 * the timeout, polling when notifications are off or lost, the caller leaving, the listener's
 * subscription removed on shutdown, and 1,000 concurrent waits on one instance.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../shared/sdk/defaults.js';
import type { Operation } from '../shared/sdk/model.js';
import { call, type OperationsStack, startOperationsStack } from './support/operations-stack.js';

const RESPONSE = { response: { '@type': 'type.googleapis.com/test.Done' } };
/** The first safety-net poll of a wait while notifications flow. */
const firstNotifiedPollMs = defaults.waitPollNotifiedInitialMs;

let s: OperationsStack;
let polling: OperationsStack;

beforeAll(async () => {
  [s, polling] = await Promise.all([
    startOperationsStack(),
    startOperationsStack({
      LRO_WAIT_NOTIFICATIONS: 'false',
      LRO_WAIT_TIMEOUT_DEFAULT: '1s',
      LRO_WAIT_TIMEOUT_MAX: '2s',
    }),
  ]);
  // The first wait of an instance creates its listener; later waits find it ready.
  const { operation } = await s.store.create();
  await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '0s' });
});

afterAll(async () => {
  await Promise.all([s?.stop(), polling?.stop()]);
});

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/** Starts a wait and resolves once the request has reached the server and been read. */
async function startWait(stack: OperationsStack, name: string, timeout: string) {
  const started = performance.now();
  const reply = call<Operation>(stack.url, 'POST', `/v1/${name}:wait`, { timeout });
  // The request's arrival is not observable from here; a short pause covers it.
  await delay(200);
  return { reply, started };
}

describe('wait with notifications', () => {
  it('returns as soon as the completion is announced, well before the first poll', async () => {
    const { operation } = await s.store.create();
    const { reply, started } = await startWait(s, operation.name, '20s');
    const completedAt = performance.now();
    await s.finish(operation.name, RESPONSE);
    const result = await reply;
    const returnedAt = started + result.ms;
    expect(result.body).toMatchObject({ name: operation.name, done: true, ...RESPONSE });
    // Woken by the wake-up: after the completion, before the first safety-net poll, and with
    // two Bigtable reads (the wait's first one and one on the wake-up), no poll.
    expect(returnedAt).toBeGreaterThan(completedAt);
    expect(returnedAt - started).toBeLessThan(firstNotifiedPollMs);
    expect(result.headers.get('x-lro-bigtable-reads')).toBe('2');
    expect(result.headers.get('x-lro-safety-net-polls')).toBe('0');
  });

  it('returns the latest state, not done, when its timeout passes', async () => {
    const { operation } = await s.store.create();
    const metadata = { '@type': 'type.googleapis.com/test.Progress', step: 7 };
    const { operation: record } = await s.store.updateMetadata(operation.name, metadata, {
      emitTime: new Date(),
      eventId: 'e1',
    });
    await s.notify('metadata', record);
    const result = await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '0.6s' });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ name: operation.name, done: false, metadata });
    expect(result.ms).toBeGreaterThanOrEqual(550);
    expect(result.ms).toBeLessThan(2_000);
  });

  it('stops waiting at once when the caller goes away', async () => {
    const { operation } = await s.store.create();
    const controller = new AbortController();
    const path = `/v1/${operation.name}:wait`;
    const pending = fetch(`${s.url}${path}`, {
      method: 'POST',
      body: '{"timeout":"60s"}',
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
    }).catch((err: unknown) => err);
    await delay(200);
    const abortedAt = Date.now();
    controller.abort();
    await pending;
    const line = await until(
      async () =>
        s.fn
          .output()
          .split('\n')
          .find((l) => l.includes(`POST ${path}`) && l.includes('"callerGone":true')),
      5_000,
      'the access log of the abandoned wait',
    );
    const latency = Number(/"latency":"([\d.]+)s"/.exec(line)?.[1]);
    expect(latency * 1000).toBeLessThan(Date.now() - abortedAt + 400);
    expect(latency).toBeLessThan(2);
  });

  it('survives callers that leave while their wait is still starting', async () => {
    const { operation } = await s.store.create();
    const leaving = Array.from({ length: 30 }, async (_, i) => {
      const controller = new AbortController();
      const pending = fetch(`${s.url}/v1/${operation.name}:wait`, {
        method: 'POST',
        body: '{"timeout":"30s"}',
        headers: { 'content-type': 'application/json' },
        signal: controller.signal,
      }).catch(() => undefined);
      setTimeout(() => controller.abort(), i % 10);
      await pending;
    });
    await Promise.all(leaving);
    const alive = await call(s.url, 'GET', `/v1/${operation.name}`);
    expect(alive.status).toBe(200);
    expect(s.fn.output()).not.toContain('Unhandled rejection');
  });

  it('finishes by polling when its notification is lost, and the listener comes back', async () => {
    const [subscription] = await s.waiterSubscriptions();
    expect(subscription).toBeDefined();
    const { operation } = await s.store.create();
    const { reply, started } = await startWait(s, operation.name, '20s');
    // The listener's subscription disappears mid-wait; the completion's notification is lost.
    await s.messaging.deleteSubscription(subscription as string);
    await s.store.complete(operation.name, RESPONSE);
    await s.notify('succeeded', (await s.store.get(operation.name)).operation);
    const result = await reply;
    expect(result.body.done).toBe(true);
    expect(performance.now() - started).toBeLessThan(defaults.waitPollInitialMs * 1.2 + 1_500);
    expect(s.fn.output()).toContain('notification listener failed');

    // The listener recreates its subscription, and waits are woken by notifications again.
    await until(
      async () =>
        (await s.waiterSubscriptions()).includes(subscription as string) ? true : undefined,
      20_000,
      'the listener subscription to be recreated',
    );
    const next = (await s.store.create()).operation;
    const again = await startWait(s, next.name, '20s');
    const completedAt = performance.now();
    await s.finish(next.name, RESPONSE);
    const woken = await again.reply;
    expect(woken.body.done).toBe(true);
    expect(again.started + woken.ms - completedAt).toBeLessThan(firstNotifiedPollMs);
    expect(woken.headers.get('x-lro-safety-net-polls')).toBe('0');
  });
});

describe('wait without notifications (LRO_WAIT_NOTIFICATIONS=false)', () => {
  it('still returns the completion, on the next poll', async () => {
    const { operation } = await polling.store.create();
    const { reply } = await startWait(polling, operation.name, '30s');
    await polling.store.complete(operation.name, RESPONSE);
    const result = await reply;
    // Found by a poll (the first comes after about a second), long before its 30 s timeout.
    expect(result.body).toMatchObject({ done: true, ...RESPONSE });
    expect(result.ms).toBeLessThan(15_000);
    expect(await polling.waiterSubscriptions()).toEqual([]);
  });

  it('uses the default timeout when none is given and caps a larger one', async () => {
    const { operation } = await polling.store.create();
    const byDefault = await call(polling.url, 'POST', `/v1/${operation.name}:wait`, {});
    expect(byDefault.body.done).toBe(false);
    expect(byDefault.ms).toBeGreaterThanOrEqual(950);
    expect(byDefault.ms).toBeLessThan(1_900);
    const capped = await call(polling.url, 'POST', `/v1/${operation.name}:wait`, {
      timeout: '3600s',
    });
    expect(capped.body.done).toBe(false);
    expect(capped.ms).toBeGreaterThanOrEqual(1_950);
    expect(capped.ms).toBeLessThan(3_500);
  });
});

describe('one instance under load', () => {
  it('holds 1,000 concurrent waits and wakes them all', async () => {
    const count = 1_000;
    const names: string[] = [];
    for (let i = 0; i < count; i += 250) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(250, count - i) }, () => s.store.create()),
      );
      names.push(...batch.map((r) => r.operation.name));
    }
    const pid = s.fn.process.pid as number;
    const rssBefore = rssKb(pid);
    const agent = new Agent({ keepAlive: true, maxSockets: count + 10 });
    let returnedEarly = 0;
    let wokenByPoll = 0;
    let wokenByNotification = 0;
    let flushed = 0;
    let allFlushed!: () => void;
    const sent = new Promise<void>((r) => {
      allFlushed = r;
    });
    const replies = names.map(
      (name) =>
        new Promise<Operation>((resolve, reject) => {
          const req = request(
            `${s.url}/v1/${name}:wait`,
            { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => {
                text += c;
              });
              res.on('end', () => {
                if (!completing) returnedEarly++;
                if (Number(res.headers['x-lro-safety-net-polls']) > 0) wokenByPoll++;
                if (res.headers['x-lro-wake-timing'] !== undefined) wokenByNotification++;
                resolve(JSON.parse(text) as Operation);
              });
            },
          );
          req.on('error', reject);
          req.on('finish', () => {
            if (++flushed === count) allFlushed();
          });
          req.end('{"timeout":"60s"}');
        }),
    );
    let completing = false;
    await sent;
    // A watch sent after all waits: its first event means the server has taken them in.
    const sentinel = (await s.store.create()).operation.name;
    await new Promise<void>((resolve, reject) => {
      const req = request(`${s.url}/v1/${sentinel}:watch`, { agent }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
    const rssHolding = rssKb(pid);
    expect(returnedEarly).toBe(0);

    completing = true;
    // As the subscriber does: the row is written first, then the change announced. The watch
    // above shows the server took the requests in, not that every wait had registered with the
    // listener; a wait that registers after its notification went by finds the row done on its
    // first read, as it would in production.
    await Promise.all(names.map((name) => s.store.complete(name, RESPONSE)));
    const started = performance.now();
    await Promise.all(
      names.map((name) => s.notify('succeeded', { name, done: true, ...RESPONSE })),
    );
    const completedIn = performance.now() - started;
    const results = await Promise.all(replies);
    const allDoneIn = performance.now() - started;
    agent.destroy();
    const notDone = results.filter((op) => !op.done).length;
    if (notDone > 0) {
      process.stdout.write(
        `${notDone} not done after ${Math.round(allDoneIn)} ms (completions ${Math.round(completedIn)} ms)\n${s.fn
          .output()
          .split('\n')
          .filter((l) => !l.includes('"INFO"'))
          .slice(0, 30)
          .join('\n')}\n`,
      );
    }
    expect(results.every((op) => op.done)).toBe(true);
    expect(new Set(results.map((op) => op.name)).size).toBe(count);
    // Every registered wait was woken by its notification: none needed a poll, and only waits
    // that registered after their notification (done on their first read) lack the timing.
    expect(wokenByPoll).toBe(0);
    expect(wokenByNotification).toBeGreaterThan(count * 0.9);
    // Recorded for the docs: memory held by the waits, completion and wake-up times.
    process.stdout.write(
      `${JSON.stringify({
        waits: count,
        rssBeforeMb: Math.round(rssBefore / 1024),
        rssHoldingMb: Math.round(rssHolding / 1024),
        completionsPublishedMs: Math.round(completedIn),
        allWaitsReturnedMs: Math.round(allDoneIn),
        wokenByNotification,
      })}\n`,
    );
    expect(allDoneIn - completedIn).toBeLessThan(5_000);
  }, 90_000);
});

describe('shutdown', () => {
  it('removes the listener subscription on SIGTERM', async () => {
    const stack = await startOperationsStack();
    try {
      const { operation } = await stack.store.create();
      await call(stack.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '0s' });
      expect(await stack.waiterSubscriptions()).toHaveLength(1);
      await stack.fn.stop();
      expect(await stack.waiterSubscriptions()).toEqual([]);
      expect(stack.fn.output()).toContain('notification listener removed');
    } finally {
      await stack.stop();
    }
  });
});

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}
