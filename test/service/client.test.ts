/**
 * The client SDK against the operations function under the functions framework.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OperationsClient,
  parentFromHeaders,
  runWithParent,
  WaitError,
  waitForOperation,
  waitForOperations,
} from '../../shared/sdk/client.js';
import { Code, LroError } from '../../shared/sdk/errors.js';
import type { Any } from '../../shared/sdk/model.js';
import { type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;
let client: OperationsClient;
const meta = (step: number): Any => ({ '@type': 'type.googleapis.com/test.Progress', step });
const RESPONSE = { response: { '@type': 'type.googleapis.com/test.Done' } };

beforeAll(async () => {
  s = await startOperationsStack();
  client = new OperationsClient({ baseUrl: `${s.url}/`, headers: { 'x-test': '1' } });
});

afterAll(async () => {
  await s?.stop();
});

async function progress(name: string, step: number) {
  const { operation: record } = await s.store.updateMetadata(name, meta(step), {
    emitTime: new Date(),
    eventId: `step-${step}`,
  });
  await s.notify('metadata', record);
}

describe('OperationsClient', () => {
  it('creates, gets, cancels and deletes', async () => {
    const op = await client.create({ operationId: 'client-1', metadata: meta(0) });
    expect(op).toEqual({ name: 'operations/client-1', done: false, metadata: meta(0) });
    expect(await client.get('client-1')).toEqual(op);
    await client.cancel(op.name);
    expect((await s.store.get(op.name)).cancelRequestTime).toBeInstanceOf(Date);
    await client.delete(op.name);
    const err = await client.get(op.name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LroError);
    expect((err as LroError).code).toBe(Code.NOT_FOUND);
  });

  it('maps error replies to LroErrors with the server code', async () => {
    await client.create({ operationId: 'client-dup' });
    const dup = await client.create({ operationId: 'client-dup' }).catch((e: unknown) => e);
    expect((dup as LroError).code).toBe(Code.ALREADY_EXISTS);
    const bad = await client.list({ pageToken: 'nonsense' }).catch((e: unknown) => e);
    expect((bad as LroError).code).toBe(Code.INVALID_ARGUMENT);
    const down = new OperationsClient({ baseUrl: 'http://127.0.0.1:1' });
    expect(((await down.get('x').catch((e: unknown) => e)) as LroError).code).toBe(
      Code.UNAVAILABLE,
    );
  });

  it('iterates over every page of the list', async () => {
    for (let i = 0; i < 5; i++) await client.create();
    const names: string[] = [];
    for await (const op of client.listAll({ pageSize: 2 })) names.push(op.name);
    const all = await client.list({ pageSize: 1000 });
    expect(names.sort()).toEqual(all.operations.map((o) => o.name).sort());
    expect(new Set(names).size).toBe(names.length);
  });

  it('propagates the parent: withParent, runWithParent, and forwarding an incoming header', async () => {
    const root = await client.create();
    const a = await client.withParent(root.name).create();
    const b = await runWithParent(root.name, () => client.create());
    const forwarded = parentFromHeaders({ 'x-lro-parent': root.name });
    const c = await runWithParent(forwarded as string, async () => {
      await Promise.resolve();
      return client.create();
    });
    const explicit = await client.create({ parent: a.name });
    for (const child of [a, b, c]) expect(await client.getParent(child.name)).toBe(root.name);
    expect(await client.getParent(explicit.name)).toBe(a.name);
    expect(await client.getParent(root.name)).toBeUndefined();
    const children: string[] = [];
    for await (const op of client.childrenAll(root.name, { pageSize: 2 })) children.push(op.name);
    expect(children.sort()).toEqual([a.name, b.name, c.name].sort());
    const tree = await client.traverse(root.name, { maxDepth: 2 });
    expect(tree.childrenOperations).toHaveLength(3);
    const first = tree.childrenOperations.find((n) => n.operation === a.name);
    expect(first?.childrenOperations).toEqual([
      { operation: explicit.name, childrenOperations: [] },
    ]);
  });

  it('waits on the server and batch-waits', async () => {
    const op = await client.create();
    const timedOut = await client.wait(op.name, { timeoutMs: 200 });
    expect(timedOut.done).toBe(false);
    const other = await client.create();
    const pending = client.batchWait([op.name, other.name], { timeoutMs: 20_000 });
    await s.finish(op.name, RESPONSE);
    await s.finish(other.name, { error: { code: 9, message: 'nope' } });
    const [x, y] = await pending;
    expect(x).toMatchObject({ name: op.name, done: true, ...RESPONSE });
    expect(y).toMatchObject({ name: other.name, done: true, error: { code: 9 } });
  });
});

describe('waitForOperation', () => {
  it('reports each metadata change once and resolves when done', async () => {
    const op = await client.create({ metadata: meta(0) });
    const seen: unknown[] = [];
    let resolveSeen!: () => void;
    let target = 1;
    const progressed = new Promise<void>((r) => {
      resolveSeen = r;
    });
    const done = waitForOperation(client, op.name, {
      timeout: 20_000,
      pollTimeout: 300,
      onMetadata: (metadata) => {
        seen.push(metadata?.step);
        if (seen.length === target) resolveSeen();
      },
    });
    await progressed;
    target = 2;
    await progress(op.name, 1);
    await s.finish(op.name, RESPONSE);
    const result = await done;
    expect(result).toMatchObject({ done: true, ...RESPONSE, metadata: meta(1) });
    // Several server waits returned the same metadata; the callback heard each change once.
    expect(seen).toEqual([0, 1]);
  });

  it('throws DEADLINE_EXCEEDED carrying the last state', async () => {
    const op = await client.create({ metadata: meta(5) });
    const started = Date.now();
    const err = await waitForOperation(client, op.name, { timeout: 700, pollTimeout: 300 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WaitError);
    expect((err as WaitError).code).toBe(Code.DEADLINE_EXCEEDED);
    expect((err as WaitError).operation).toEqual({ name: op.name, done: false, metadata: meta(5) });
    // Not before its timeout; after it, nothing would end the wait (the operation stays running)
    // but this test's own timeout.
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
  });

  it('stops at once when its signal aborts', async () => {
    const op = await client.create();
    const controller = new AbortController();
    // A wait that ignored its signal would hold until its 300 s timeout, past this test's own.
    const pending = waitForOperation(client, op.name, {
      timeout: 300_000,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 100);
    const err = await pending;
    expect((err as WaitError).code).toBe(Code.CANCELLED);
  });

  it('rejects with the server error for a missing operation', async () => {
    const err = await waitForOperation(client, 'operations/absent-9', { timeout: 5_000 }).catch(
      (e: unknown) => e,
    );
    expect((err as LroError).code).toBe(Code.NOT_FOUND);
  });

  it('waits for several operations at once', async () => {
    const a = await client.create();
    const b = await client.create();
    const pending = waitForOperations(client, [a.name, b.name], { timeout: 20_000 });
    await s.finish(a.name, RESPONSE);
    await s.finish(b.name, RESPONSE);
    const results = await pending;
    expect(results.map((o) => [o.name, o.done])).toEqual([
      [a.name, true],
      [b.name, true],
    ]);
  });
});
