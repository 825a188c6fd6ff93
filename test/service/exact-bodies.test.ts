/**
 * What a caller or a worker sends is applied exactly, or refused with the reason: a JSON body
 * without a Content-Type is read as JSON (never ignored), the subscriber answers other content
 * types with a 4xx, and values that JSON.parse would change silently (a number out of a double's
 * range, an integer past 2^53, a duplicate key, a `__proto__` key) are a 400 naming their path
 * over HTTP and a dead letter for an event. The filter's code names are Code's own names only.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OperationsClient } from '../../shared/sdk/client.js';
import { Code } from '../../shared/sdk/errors.js';
import { checkEvent } from '../../shared/sdk/events.js';
import { inexactJson, parseJsonWithin } from '../../shared/sdk/json-limits.js';
import { DEAD_LETTER_ATTRIBUTES } from '../../shared/service/events/subscriber.js';
import { compileFilter } from '../../shared/service/store/filter.js';
import { testEnv } from '../support/env.js';
import { type EventStack, progress, startEventStack } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

interface Answer {
  status: number;
  body: any;
}

/** A request with exactly these headers: no Content-Type unless given (fetch would add one). */
function raw(
  url: string,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.once('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text for the assertion message
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

function expect400(reply: Answer, ...fragments: string[]) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(400);
  expect(reply.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
  for (const fragment of fragments) expect(reply.body.error.message).toContain(fragment);
}

const TYPE = 'type.googleapis.com/test.Values';

describe('inexactJson', () => {
  it('names the path of numbers a double cannot keep, duplicate keys and __proto__', () => {
    expect(inexactJson('{"a":[1,2.5,-0.25e3,"1e309",{"b":1e308}]}')).toBeUndefined();
    expect(inexactJson('{"a":1e309}')).toBe('a: number 1e309 is out of the range of a double');
    expect(inexactJson('[0,{"x y":[-1E400]}]')).toContain('[1]["x y"][0]: number -1E400');
    expect(inexactJson('{"a":{"b":1e-400}}')).toContain('a.b: number 1e-400 is too small');
    expect(inexactJson('{"n":9007199254740993}')).toContain('n: integer 9007199254740993');
    expect(inexactJson('{"n":9007199254740992,"m":-9007199254740991}')).toBeUndefined();
    // What JSON.stringify writes for a large double reads back as the same double.
    expect(inexactJson(JSON.stringify({ n: -386401225160093660000 }))).toBeUndefined();
    expect(inexactJson('{"a":1,"b":{"a":2},"a":3}')).toBe('a: duplicate key "a"');
    expect(inexactJson('{"a":1,"\\u0061":2}')).toBe('a: duplicate key "a"');
    expect(inexactJson('{"m":{"__proto__":{"x":1}}}')).toBe(
      'm.__proto__: the key __proto__ is not accepted',
    );
    expect(inexactJson('{"m":"__proto__","k":["__proto__"]}')).toBeUndefined();
    expect(inexactJson('1e999')).toBe('(the root): number 1e999 is out of the range of a double');
  });

  it('parseJsonWithin refuses them only when asked to be exact', () => {
    expect(parseJsonWithin('{"a":1e309}')).toEqual({ ok: true, value: { a: Infinity } });
    expect(parseJsonWithin('{"a":1e309}', { exact: true })).toEqual({
      ok: false,
      reason: 'a: number 1e309 is out of the range of a double',
    });
  });
});

describe('SDKs', () => {
  it('the worker SDK refuses Infinity and NaN instead of publishing null', () => {
    const event = {
      operation: 'operations/sdk-inexact',
      type: 'metadata',
      eventId: 'e-1',
      emitTime: new Date().toISOString(),
      metadata: { '@type': TYPE, ratio: Number.POSITIVE_INFINITY },
    };
    expect(checkEvent(event)).toEqual({
      ok: false,
      reason: 'ratio: Infinity and NaN cannot be sent in JSON (they would arrive as null)',
    });
    expect(checkEvent({ ...event, metadata: { '@type': TYPE, ratio: 1.5 } }).ok).toBe(true);
  });

  it('the client SDK refuses them before sending anything', async () => {
    let sent = 0;
    const client = new OperationsClient({
      baseUrl: 'http://127.0.0.1:1',
      fetch: async () => {
        sent++;
        return new Response('{}');
      },
    });
    await expect(
      client.create({ metadata: { '@type': TYPE, ratio: Number.NaN } }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      message: expect.stringContaining('ratio'),
    });
    expect(sent).toBe(0);
  });
});

describe('filter', () => {
  it('error.code compares with Code names only, not with what every object inherits', () => {
    expect(() => compileFilter('error.code = CANCELLED')).not.toThrow();
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(() => compileFilter(`error.code = ${name}`), name).toThrow(/invalid filter/);
    }
  });
});

describe('HTTP', () => {
  let s: OperationsStack;
  let subscriber: RunningFunction;
  beforeAll(async () => {
    [s, subscriber] = await Promise.all([
      startOperationsStack(),
      startFunction('subscriber', testEnv()),
    ]);
  });
  afterAll(async () => {
    await Promise.all([s?.stop(), subscriber?.stop()]);
  });

  it('a create body without Content-Type is read as JSON: operationId, requestId and deadline count', async () => {
    const named = await raw(s.url, 'POST', '/v1/operations', '{"operationId":"no-type-1"}');
    expect(named.status, JSON.stringify(named.body)).toBe(200);
    expect(named.body.name).toBe('operations/no-type-1');
    const first = await raw(s.url, 'POST', '/v1/operations', '{"requestId":"no-type-req"}');
    const again = await raw(s.url, 'POST', '/v1/operations', '{"requestId":"no-type-req"}');
    expect(first.status).toBe(200);
    expect(again.body.name).toBe(first.body.name);
    expect400(await raw(s.url, 'POST', '/v1/operations', '{"deadline":"tomorrow"}'), 'deadline');
    expect400(await raw(s.url, 'POST', '/v1/operations', '{"operationId":'), 'not JSON');
  });

  it('reads the body as JSON under every content type docs/openapi.yaml lists for it', async () => {
    const document = parse(
      readFileSync(resolve(import.meta.dirname, '../../docs/openapi.yaml'), 'utf8'),
    ) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    const listed = Object.keys(document.paths['/v1/operations']?.post?.requestBody?.content ?? {});
    expect(listed).toContain('application/json');
    for (const [i, type] of listed.entries()) {
      const reply = await raw(s.url, 'POST', '/v1/operations', `{"operationId":"typed-${i}"}`, {
        'content-type': type,
      });
      expect(reply.status, `${type}: ${JSON.stringify(reply.body)}`).toBe(200);
      expect(reply.body.name).toBe(`operations/typed-${i}`);
    }
  });

  it(':wait without Content-Type reads its timeout', async () => {
    const { name } = (await call(s.url, 'POST', '/v1/operations', {})).body;
    expect400(await raw(s.url, 'POST', `/v1/${name}:wait`, '{"timeout":"soon"}'), 'timeout');
    const waited = await raw(s.url, 'POST', `/v1/${name}:wait`, '{"timeout":"0s"}');
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ name, done: false });
  });

  it('a charset other than UTF-8 is 415, with or without a JSON type', async () => {
    for (const type of ['application/json; charset=latin1', 'text/plain; charset=koi8-r']) {
      const reply = await raw(s.url, 'POST', '/v1/operations', '{}', { 'content-type': type });
      expect(reply.status, type).toBe(415);
      expect(reply.body.error).toMatchObject({ code: 415, status: 'INVALID_ARGUMENT' });
    }
  });

  it('the subscriber answers a text/plain or form POST with 415 in the error shape, not 500', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const reply = await raw(subscriber.url, 'POST', '/', '{"message":{"data":"e30="}}', {
        'content-type': type,
      });
      expect(reply.status, `${type}: ${JSON.stringify(reply.body)}`).toBe(415);
      expect(reply.body.error).toMatchObject({ code: 415, status: 'INVALID_ARGUMENT' });
    }
    for (const body of ['{"message":', '""', '12', 'null']) {
      const malformed = await raw(subscriber.url, 'POST', '/', body, {
        'content-type': 'application/json',
      });
      expect(malformed.status, body).toBe(400);
      expect(malformed.body.error.status).toBe('INVALID_ARGUMENT');
    }
  });

  it('a create with a number a double cannot keep is 400 with its path, and nothing is created', async () => {
    for (const value of ['1e309', '-1e400', '1e-400', '9007199254740993']) {
      const body = `{"operationId":"inexact-1","metadata":{"@type":"${TYPE}","n":${value}}}`;
      expect400(await call(s.url, 'POST', '/v1/operations', body), 'metadata.n: ', value);
    }
    expect((await call(s.url, 'GET', '/v1/operations/inexact-1')).status).toBe(404);
  });

  it('__proto__ keys and duplicate keys are 400 with their path, never dropped or merged', async () => {
    expect400(
      await call(
        s.url,
        'POST',
        '/v1/operations',
        `{"metadata":{"@type":"${TYPE}","__proto__":{"admin":true}}}`,
      ),
      'metadata.__proto__',
    );
    expect400(
      await call(s.url, 'POST', '/v1/operations', '{"operationId":"dup-a","operationId":"dup-b"}'),
      'duplicate key "operationId"',
    );
    expect400(
      await call(
        s.url,
        'POST',
        '/v1/operations',
        `{"metadata":{"@type":"${TYPE}","x":{"k":1,"k":2}}}`,
      ),
      'metadata.x.k: duplicate key',
    );
    expect((await call(s.url, 'GET', '/v1/operations/dup-b')).status).toBe(404);
    // A value that is the string "__proto__", or keys that differ, are kept as sent.
    const kept = await call(
      s.url,
      'POST',
      '/v1/operations',
      `{"metadata":{"@type":"${TYPE}","k":"__proto__","constructor":1,"big":1e308}}`,
    );
    expect(kept.status).toBe(200);
    expect((await call(s.url, 'GET', `/v1/${kept.body.name}`)).body.metadata).toEqual({
      '@type': TYPE,
      k: '__proto__',
      constructor: 1,
      big: 1e308,
    });
  });

  it('the filter error.code = constructor is 400', async () => {
    const reply = await call(s.url, 'GET', '/v1/operations?filter=error.code%20%3D%20constructor');
    expect400(reply, 'invalid filter');
  });
});

describe('events', () => {
  let s: EventStack;
  beforeAll(async () => {
    s = await startEventStack({
      maxDeliveryAttempts: 5,
      minimumBackoffSeconds: 1,
      maximumBackoffSeconds: 1,
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a metadata event with 1e309, a duplicate key or __proto__ is dead-lettered with its path; the operation keeps its metadata', async () => {
    const { operation } = await s.store.create({ metadata: progress(0) });
    const envelope = `"operation":"${operation.name}","type":"metadata","emitTime":"${new Date().toISOString()}"`;
    const bodies = [
      [
        `{${envelope},"eventId":"inexact-1","metadata":{"@type":"${TYPE}","n":1e309}}`,
        'metadata.n',
      ],
      [
        `{${envelope},"eventId":"inexact-2","metadata":{"@type":"${TYPE}","n":1,"n":2}}`,
        'metadata.n: duplicate key',
      ],
      [
        `{${envelope},"eventId":"inexact-3","metadata":{"@type":"${TYPE}","__proto__":{}}}`,
        'metadata.__proto__',
      ],
    ] as const;
    const ids: string[] = [];
    for (const [body] of bodies) {
      ids.push(
        await s.messaging.publish(s.config.topics.events, Buffer.from(body), {
          attributes: { operation: operation.name, type: 'metadata' },
        }),
      );
    }
    const letters = await s.readDeadLetters(bodies.length, 40_000);
    expect(letters).toHaveLength(bodies.length);
    for (const [i, [, fragment]] of bodies.entries()) {
      const letter = letters.find((l) => l.attributes[DEAD_LETTER_ATTRIBUTES.messageId] === ids[i]);
      expect(letter?.attributes[DEAD_LETTER_ATTRIBUTES.reason], fragment).toContain(fragment);
      // Dead-lettered by the subscriber on the first delivery, not retried.
      expect(letter?.attributes.CloudPubSubDeadLetterSourceDeliveryCount).toBeUndefined();
    }
    expect((await s.store.get(operation.name)).operation).toEqual({
      name: operation.name,
      done: false,
      metadata: progress(0),
    });
  }, 60_000);
});
