/**
 * End to end through the real path: the client SDK calls the operations function, a worker
 * reports through the events topic, the subscriber (pushed to by Pub/Sub) writes Bigtable and
 * announces each change, and the waiting caller is woken by that announcement.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationsClient, waitForOperation } from '../../shared/sdk/client.js';
import type { Any } from '../../shared/sdk/model.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { type EventStack, startEventStack } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

let pipeline: EventStack;
let api: RunningFunction;
let client: OperationsClient;
const meta = (step: number): Any => ({ '@type': 'type.googleapis.com/test.Progress', step });

beforeAll(async () => {
  pipeline = await startEventStack();
  api = await startFunction('operations', pipeline.env);
  client = new OperationsClient({ baseUrl: api.url });
});

afterAll(async () => {
  await api?.stop();
  await pipeline?.close();
});

describe('API, worker and subscriber together', () => {
  it('reports progress to the waiting caller and ends with the worker result', async () => {
    const op = await client.create({ metadata: meta(0) });
    const reporter = await OperationReporter.open({ operation: op.name, config: pipeline.config });
    try {
      const steps: number[] = [];
      let stepSeen!: (step: number) => void;
      let seen = new Promise<number>((r) => {
        stepSeen = r;
      });
      const waiting = waitForOperation(client, op.name, {
        timeout: 30_000,
        // Progress is seen once per server reply: short server waits for a lively progress bar.
        pollTimeout: 500,
        onMetadata: (metadata) => {
          steps.push(metadata?.step as number);
          stepSeen(metadata?.step as number);
        },
      });
      expect(await seen).toBe(0);
      seen = new Promise<number>((r) => {
        stepSeen = r;
      });
      await reporter.progress(meta(1));
      expect(await seen).toBe(1);
      const finishedAt = performance.now();
      await reporter.succeed({ '@type': 'type.googleapis.com/test.Done' });
      const done = await waiting;
      const latencyMs = performance.now() - finishedAt;
      expect(done).toMatchObject({ name: op.name, done: true, metadata: meta(1) });
      expect(steps).toEqual([0, 1]);
      // Push, write and notification: printed, not bounded (a loaded machine stretches it; the
      // bench measures it against a baseline).
      process.stdout.write(`${JSON.stringify({ eventToWaiterMs: Math.round(latencyMs) })}\n`);
    } finally {
      await reporter.close();
    }
  });

  it('a wait woken by the announcement says when each stage of the wake-up happened', async () => {
    const wait = (id: string, timeout: string) =>
      fetch(`${api.url}/v1/operations/${id}:wait`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ timeout }),
      });
    // A wait that times out first: the API's notification listener is running afterwards.
    const warm = await client.create({});
    expect((await wait(warm.name.slice('operations/'.length), '1s')).status).toBe(200);
    // The wait is registered within a millisecond of its arrival; the completion takes a push,
    // a write and a notification. Should the read still win, that wait carries no timing: retry.
    let header: string | null = null;
    let publishedAt = 0;
    let receivedAt = 0;
    for (let attempt = 0; attempt < 3 && !header; attempt++) {
      const op = await client.create({});
      const reporter = await OperationReporter.open({
        operation: op.name,
        config: pipeline.config,
      });
      try {
        const waiting = wait(op.name.slice('operations/'.length), '30s');
        publishedAt = Date.now();
        await reporter.succeed({ '@type': 'type.googleapis.com/test.Done' });
        const res = await waiting;
        receivedAt = Date.now();
        expect(res.status).toBe(200);
        expect(((await res.json()) as { done: boolean }).done).toBe(true);
        header = res.headers.get('x-lro-wake-timing');
      } finally {
        await reporter.close();
      }
    }
    const timing = Object.fromEntries(
      (header ?? '')
        .split(', ')
        .map((pair) => pair.split('='))
        .map(([k, v]) => [k, Number(v)]),
    );
    const order = ['received', 'written', 'published', 'delivered', 'responded'];
    expect(Object.keys(timing)).toEqual(expect.arrayContaining(order));
    // One clock on one machine; Pub/Sub's publishTime has millisecond resolution.
    let previous = publishedAt;
    for (const key of order) {
      expect(timing[key], key).toBeGreaterThanOrEqual(previous - 1);
      previous = timing[key] as number;
    }
    expect(previous).toBeLessThanOrEqual(receivedAt);
  });

  it('cancels: the worker hears it, stops with CANCELLED, and the wait ends with code 1', async () => {
    const op = await client.create();
    const reporter = await OperationReporter.open({ operation: op.name, config: pipeline.config });
    try {
      const waiting = waitForOperation(client, op.name, { timeout: 30_000 });
      const stopped = new Promise<void>((resolve) => {
        reporter.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await client.cancel(op.name);
      await stopped;
      await reporter.cancelled('stopped on request');
      const done = await waiting;
      expect(done).toMatchObject({ name: op.name, done: true, error: { code: 1 } });
    } finally {
      await reporter.close();
    }
  });
});
