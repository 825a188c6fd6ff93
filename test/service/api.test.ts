/**
 * The operations API through real HTTP: the function under the functions framework, with the
 * Bigtable and Pub/Sub emulators. Success and error paths of every route.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { expectError } from '../support/errors.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;
const meta = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

describe('create', () => {
  it('creates an operation with a generated UUID and returns it not done', async () => {
    const reply = await call(s.url, 'POST', '/v1/operations', { metadata: meta(0) });
    expect(reply.status).toBe(200);
    expect(reply.body.name).toMatch(/^operations\/[0-9a-f-]{36}$/);
    expect(reply.body).toMatchObject({ done: false, metadata: meta(0) });
  });

  it('accepts an empty body and no content type', async () => {
    const reply = await call(s.url, 'POST', '/v1/operations');
    expect(reply.status).toBe(200);
    expect(reply.body.done).toBe(false);
  });

  it('creates with a caller-chosen ID and refuses it twice with 409', async () => {
    const first = await call(s.url, 'POST', '/v1/operations', { operationId: 'chosen-1' });
    expect(first.body.name).toBe('operations/chosen-1');
    const second = await call(s.url, 'POST', '/v1/operations', { operationId: 'chosen-1' });
    expectError(second, 409, 'ALREADY_EXISTS');
  });

  it('returns the same operation for a retried requestId', async () => {
    const a = await call(s.url, 'POST', '/v1/operations', { requestId: 'req-42' });
    const b = await call(s.url, 'POST', '/v1/operations', { requestId: 'req-42' });
    expect(b.status).toBe(200);
    expect(b.body.name).toBe(a.body.name);
  });

  it('rejects bad IDs, unknown fields and bad metadata with 400', async () => {
    for (const body of [
      { operationId: 'Upper' },
      { operationId: '-x' },
      { operationId: 'a'.repeat(64) },
      { operationId: 'a/b' },
      { nope: 1 },
      { metadata: { step: 1 } },
      { parent: 'jobs/1' },
    ]) {
      expectError(await call(s.url, 'POST', '/v1/operations', body), 400, 'INVALID_ARGUMENT');
    }
  });

  it('rejects malformed JSON, non-object JSON and wrong content types with 4xx, never 5xx', async () => {
    expectError(
      await call(s.url, 'POST', '/v1/operations', '{"operationId":'),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(await call(s.url, 'POST', '/v1/operations', '"text"'), 400, 'INVALID_ARGUMENT');
    expectError(await call(s.url, 'POST', '/v1/operations', '[1]'), 400, 'INVALID_ARGUMENT');
    expectError(
      await call(s.url, 'POST', '/v1/operations', '{"operationId":', {
        'content-type': 'text/plain',
      }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', '/v1/operations', '<a/>', { 'content-type': 'application/xml' }),
      415,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', '/v1/operations', '{}', {
        'content-type': 'application/json; charset=koi9',
      }),
      415,
      'INVALID_ARGUMENT',
    );
  });

  it('accepts a JSON body sent as curl does by default (form content type)', async () => {
    const reply = await call(s.url, 'POST', '/v1/operations', '{"operationId":"curl-style"}', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(reply.status).toBe(200);
    expect(reply.body.name).toBe('operations/curl-style');
  });

  it('rejects bodies over the limit with 413 in the error shape', async () => {
    const big = {
      metadata: {
        '@type': 'type.googleapis.com/test.Big',
        pad: 'x'.repeat(defaults.httpBodyMaxBytes),
      },
    };
    expectError(await call(s.url, 'POST', '/v1/operations', big), 413, 'INVALID_ARGUMENT');
  });

  it('takes the parent from the body, or from the x-lro-parent header', async () => {
    const parent = (await call(s.url, 'POST', '/v1/operations', { operationId: 'p-1' })).body.name;
    const viaBody = await call(s.url, 'POST', '/v1/operations', { parent });
    const viaHeader = await call(s.url, 'POST', '/v1/operations', {}, { 'x-lro-parent': parent });
    expect((await call(s.url, 'GET', `/v1/${viaBody.body.name}:getParent`)).body).toEqual({
      parent,
    });
    expect((await call(s.url, 'GET', `/v1/${viaHeader.body.name}/parent`)).body).toEqual({
      parent,
    });
    expectError(
      await call(s.url, 'POST', '/v1/operations', {}, { 'x-lro-parent': 'not a name' }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', '/v1/operations', { parent: 'operations/missing-parent' }),
      404,
      'NOT_FOUND',
    );
  });
});

describe('get, delete and routing', () => {
  it('gets an operation, deletes it, then answers 404', async () => {
    const { name } = (await call(s.url, 'POST', '/v1/operations', { metadata: meta(3) })).body;
    const got = await call(s.url, 'GET', `/v1/${name}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ name, done: false, metadata: meta(3) });
    const deleted = await call(s.url, 'DELETE', `/v1/${name}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({});
    expectError(await call(s.url, 'GET', `/v1/${name}`), 404, 'NOT_FOUND');
    expectError(await call(s.url, 'DELETE', `/v1/${name}`), 404, 'NOT_FOUND');
  });

  it('returns the result of a finished operation', async () => {
    const { operation } = await s.store.create();
    const response = { '@type': 'type.googleapis.com/test.Result', ok: true };
    await s.store.complete(operation.name, { response });
    const got = await call(s.url, 'GET', `/v1/${operation.name}`);
    expect(got.body).toEqual({ name: operation.name, done: true, response });
  });

  it('answers 400 for invalid IDs and 404 for unknown routes, in the error shape', async () => {
    expectError(await call(s.url, 'GET', '/v1/operations/UPPER'), 400, 'INVALID_ARGUMENT');
    expectError(await call(s.url, 'GET', '/v1/operations/%E0%A4%A'), 400, 'INVALID_ARGUMENT');
    expectError(
      await call(s.url, 'GET', `/v1/operations/${'a'.repeat(70)}`),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(await call(s.url, 'GET', '/v1/operations/x:explode'), 404, 'NOT_FOUND');
    expectError(await call(s.url, 'GET', '/v1/operations/x/y/z'), 404, 'NOT_FOUND');
    expectError(await call(s.url, 'GET', '/v2/operations'), 404, 'NOT_FOUND');
    expectError(await call(s.url, 'GET', '/'), 404, 'NOT_FOUND');
  });

  it('answers 405 with an Allow header for a wrong method', async () => {
    const reply = await call(s.url, 'PUT', '/v1/operations/abc', {});
    expectError(reply, 405, 'UNIMPLEMENTED');
    expect(reply.headers.get('allow')).toBe('GET, DELETE');
    expectError(await call(s.url, 'GET', '/v1/operations/abc:wait'), 405, 'UNIMPLEMENTED');
    expectError(await call(s.url, 'DELETE', '/v1/operations'), 405, 'UNIMPLEMENTED');
  });

  it('accepts the colon percent-encoded and ignores Google system parameters', async () => {
    const { name } = (await call(s.url, 'POST', '/v1/operations')).body;
    const reply = await call(
      s.url,
      'POST',
      `/v1/${name}%3Await?%24alt=json%3Benum-encoding%3Dint`,
      {
        timeout: '0s',
      },
    );
    expect(reply.status).toBe(200);
    expect(reply.body.name).toBe(name);
  });

  it('rejects unknown and repeated query parameters', async () => {
    expectError(await call(s.url, 'GET', '/v1/operations/abc?x=1'), 400, 'INVALID_ARGUMENT');
    expectError(
      await call(s.url, 'GET', '/v1/operations?pageSize=1&pageSize=2'),
      400,
      'INVALID_ARGUMENT',
    );
  });
});

describe('list and children', () => {
  it('pages through all operations with nextPageToken', async () => {
    const seen = new Set<string>();
    let token = '';
    let pages = 0;
    do {
      const reply = await call(
        s.url,
        'GET',
        `/v1/operations?pageSize=3${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
      );
      expect(reply.status).toBe(200);
      expect(reply.body.operations.length).toBeLessThanOrEqual(3);
      for (const op of reply.body.operations) seen.add(op.name);
      token = reply.body.nextPageToken;
      pages++;
    } while (token && pages < 100);
    const all = await call(s.url, 'GET', '/v1/operations?pageSize=1000');
    expect(seen.size).toBe(all.body.operations.length);
    expect(pages).toBeGreaterThan(1);
  });

  it('filters by done', async () => {
    const reply = await call(
      s.url,
      'GET',
      `/v1/operations?filter=${encodeURIComponent('done = true')}`,
    );
    expect(reply.status).toBe(200);
    expect(reply.body.operations.length).toBeGreaterThan(0);
    expect(reply.body.operations.every((op: { done: boolean }) => op.done)).toBe(true);
  });

  it('rejects bad page tokens, page sizes and filters with 400', async () => {
    expectError(
      await call(s.url, 'GET', '/v1/operations?pageToken=garbage'),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(await call(s.url, 'GET', '/v1/operations?pageSize=-1'), 400, 'INVALID_ARGUMENT');
    expectError(await call(s.url, 'GET', '/v1/operations?pageSize=abc'), 400, 'INVALID_ARGUMENT');
    expectError(
      await call(s.url, 'GET', `/v1/operations?filter=${encodeURIComponent('done = = (')}`),
      400,
      'INVALID_ARGUMENT',
    );
  });

  it('lists children page by page, traverses the tree and rejects foreign page tokens', async () => {
    const root = (await call(s.url, 'POST', '/v1/operations', { operationId: 'tree-root' })).body
      .name;
    const kids: string[] = [];
    for (let i = 0; i < 5; i++) {
      kids.push((await call(s.url, 'POST', '/v1/operations', { parent: root })).body.name);
    }
    const grandchild = (await call(s.url, 'POST', '/v1/operations', { parent: kids[0] })).body.name;
    const names: string[] = [];
    let token = '';
    do {
      const reply = await call(
        s.url,
        'GET',
        `/v1/${root}/children?pageSize=2${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
      );
      expect(reply.status).toBe(200);
      names.push(...reply.body.operations.map((o: { name: string }) => o.name));
      token = reply.body.nextPageToken;
    } while (token);
    expect(names.sort()).toEqual([...kids].sort());

    const tree = await call(s.url, 'GET', `/v1/${root}:traverse`);
    expect(tree.status).toBe(200);
    expect(tree.body.operation).toBe(root);
    expect(tree.body.childrenOperations).toHaveLength(5);
    const first = tree.body.childrenOperations.find((n: any) => n.operation === kids[0]);
    expect(first.childrenOperations).toEqual([{ operation: grandchild, childrenOperations: [] }]);
    const shallow = await call(s.url, 'GET', `/v1/${root}/tree?maxDepth=1`);
    expect(
      shallow.body.childrenOperations.every((n: any) => n.childrenOperations.length === 0),
    ).toBe(true);
    expectError(
      await call(s.url, 'GET', `/v1/${root}:traverse?maxDepth=999`),
      400,
      'INVALID_ARGUMENT',
    );
    expect((await call(s.url, 'GET', `/v1/${root}:getParent`)).body).toEqual({});

    const page = await call(s.url, 'GET', `/v1/${root}/children?pageSize=2`);
    const foreign = await call(
      s.url,
      'GET',
      `/v1/${kids[0]}/children?pageToken=${encodeURIComponent(page.body.nextPageToken)}`,
    );
    expectError(foreign, 400, 'INVALID_ARGUMENT');
    expectError(await call(s.url, 'GET', '/v1/operations/nobody/children'), 404, 'NOT_FOUND');
    expectError(await call(s.url, 'GET', '/v1/operations/nobody:traverse'), 404, 'NOT_FOUND');
  });
});

describe('cancel', () => {
  it('records the request, announces it to workers, and the CANCELLED failure ends the wait', async () => {
    const collector = await s.collectNotifications();
    try {
      const { name } = (await call(s.url, 'POST', '/v1/operations')).body;
      const waiting = call(s.url, 'POST', `/v1/${name}:wait`, { timeout: '20s' });
      const cancelled = await call(s.url, 'POST', `/v1/${name}:cancel`, {});
      expect(cancelled.status).toBe(200);
      expect(cancelled.body).toEqual({});
      expect((await s.store.get(name)).cancelRequestTime).toBeInstanceOf(Date);
      // The worker hears the request and stops with CANCELLED.
      const heard = await collector.next(
        (n) => n.type === 'cancelRequested' && n.operation.name === name,
      );
      expect(heard.operation.done).toBe(false);
      await s.finish(name, { error: { code: 1, message: 'cancelled by the caller' } });
      const reply = await waiting;
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ name, done: true, error: { code: 1 } });
      // Cancelling again, or after the end, is harmless.
      expect((await call(s.url, 'POST', `/v1/${name}:cancel`, {})).status).toBe(200);
    } finally {
      await collector.close();
    }
  });

  it('rejects a cancel body with fields and unknown operations', async () => {
    const { name } = (await call(s.url, 'POST', '/v1/operations')).body;
    expectError(await call(s.url, 'POST', `/v1/${name}:cancel`, { x: 1 }), 400, 'INVALID_ARGUMENT');
    expectError(await call(s.url, 'POST', '/v1/operations/gone-1:cancel', {}), 404, 'NOT_FOUND');
  });
});

describe('wait and batch wait', () => {
  it('returns a done operation at once and validates the timeout', async () => {
    const { operation } = await s.store.create();
    await s.store.complete(operation.name, { response: { '@type': 'type.googleapis.com/x.Y' } });
    // At once: its first read answers it (a wait that held on would outlast this test).
    const reply = await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '300s' });
    expect(reply.body.done).toBe(true);
    expect(reply.headers.get('x-lro-bigtable-reads')).toBe('1');
    expectError(
      await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '30' }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', `/v1/${operation.name}:wait`, { timeout: '-1s' }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(await call(s.url, 'POST', '/v1/operations/absent-1:wait', {}), 404, 'NOT_FOUND');
  });

  it('batch wait returns every latest state at its timeout, and all when done', async () => {
    const a = (await s.store.create()).operation.name;
    const b = (await s.store.create()).operation.name;
    const timedOut = await call(s.url, 'POST', '/v1/operations:batchWait', {
      names: [a, b],
      timeout: '0.3s',
    });
    expect(timedOut.status).toBe(200);
    expect(timedOut.body.operations.map((o: any) => [o.name, o.done])).toEqual([
      [a, false],
      [b, false],
    ]);
    // Answered when both are done: at its 300 s timeout, this test would have failed long before.
    const waiting = call(s.url, 'POST', '/v1/operations:batchWait', {
      names: [a, b],
      timeout: '300s',
    });
    await s.finish(a, { response: { '@type': 'type.googleapis.com/x.Y' } });
    await s.finish(b, { error: { code: 13, message: 'boom' } });
    const reply = await waiting;
    expect(reply.body.operations).toMatchObject([
      { name: a, done: true },
      { name: b, done: true, error: { code: 13 } },
    ]);
    expectError(
      await call(s.url, 'POST', '/v1/operations:batchWait', { names: [] }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', '/v1/operations:batchWait', { names: ['operations/BAD'] }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await call(s.url, 'POST', '/v1/operations:batchWait', { names: [a, 'operations/absent-2'] }),
      404,
      'NOT_FOUND',
    );
  });
});

describe('watch', () => {
  it('streams the current state, each change, and ends after done', async () => {
    const { operation } = await s.store.create({ metadata: meta(0) });
    const events: { event: string; data: any }[] = [];
    let head: { status?: number | undefined; type?: string | undefined } = {};
    const ended = new Promise<void>((resolve, reject) => {
      const req = request(`${s.url}/v1/${operation.name}:watch`, (res) => {
        head = { status: res.statusCode, type: res.headers['content-type'] };
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) {
              events.push({ event, data: JSON.parse(data) });
              // A failed step fails the test through the stream's promise, not as a stray rejection.
              onEvent(events.length).catch(reject);
            }
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    // Each step is taken once the previous state has been seen on the stream.
    const onEvent = async (count: number) => {
      const step = count;
      if (step <= 2) {
        const { operation: record } = await s.store.updateMetadata(operation.name, meta(step), {
          emitTime: new Date(Date.now()),
          eventId: `e${step}`,
        });
        await s.notify('metadata', record);
      } else if (step === 3) {
        await s.finish(operation.name, { response: { '@type': 'type.googleapis.com/x.Done' } });
      }
    };
    await ended;
    expect(head.status).toBe(200);
    expect(head.type).toMatch(/^text\/event-stream/);
    expect(events.map((e) => e.event)).toEqual([
      'operation',
      'operation',
      'operation',
      'operation',
    ]);
    expect(events.map((e) => e.data.metadata?.step)).toEqual([0, 1, 2, 2]);
    expect(events.at(-1)?.data.done).toBe(true);
  });

  it('answers 404 before streaming for an unknown operation', async () => {
    expectError(await call(s.url, 'GET', '/v1/operations/absent-3:watch'), 404, 'NOT_FOUND');
  });
});
