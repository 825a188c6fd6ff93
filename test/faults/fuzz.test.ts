/**
 * Property-based fuzzing (fast-check) of the two doors of the system: every HTTP endpoint of the
 * operations API, and the subscriber's push endpoint. Whatever comes in, a bad request is never
 * a 5xx, errors have Google's JSON shape, the processes keep answering, malformed events are
 * acknowledged and dead-lettered, and a done operation never changes again.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../shared/sdk/events.js';
import { inexactJson } from '../../shared/sdk/json-limits.js';
import type { Operation } from '../../shared/sdk/model.js';
import { DEAD_LETTER_ATTRIBUTES } from '../../shared/service/events/subscriber.js';
import {
  collect,
  createOperation,
  type FaultStack,
  type HttpReply,
  progress,
  pushBody,
  rawRequest,
  result,
  startFaultStack,
  until,
  workerEvent,
} from './support.js';

let s: FaultStack;
/** Operations the HTTP fuzzing may address: running, succeeded and failed. */
const seeded: string[] = [];
/**
 * A succeeded operation the fuzzing never addresses (it may delete or cancel the seeded ones, as
 * any client may): read at the end to show the API still answers with what is stored.
 */
let sentinel = '';

beforeAll(async () => {
  // Short wait limits, so that a fuzzed :wait, :batchWait or :watch returns within seconds.
  s = await startFaultStack({
    env: { LRO_WAIT_TIMEOUT_MAX: '2s', LRO_WAIT_TIMEOUT_DEFAULT: '1s' },
  });
  for (let i = 0; i < 3; i++) {
    const op = await createOperation(s.api.url, progress(i));
    seeded.push(op.name);
  }
  await s.store.complete(seeded[1] as string, { response: result('seeded') });
  await s.store.complete(seeded[2] as string, { error: { code: 5, message: 'seeded failure' } });
  sentinel = (await createOperation(s.api.url, progress(9))).name;
  await s.store.complete(sentinel, { response: result('sentinel') });
});

afterAll(async () => {
  await s?.stop();
});

const CODE_NAMES = new Set([
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

/** Why a reply breaks the API's error contract, or undefined when it keeps it. */
function contractBreach(method: string, reply: HttpReply): string | undefined {
  if (reply.status >= 500) return `status ${reply.status}: ${reply.text.slice(0, 500)}`;
  if (reply.status < 400 || method === 'HEAD') return undefined;
  const error = (reply.json as { error?: Record<string, unknown> } | undefined)?.error;
  if (!error) return `error without Google's shape: ${reply.text.slice(0, 300)}`;
  if (error.code !== reply.status) return `error.code ${String(error.code)} != ${reply.status}`;
  if (typeof error.message !== 'string') return 'error.message is not a string';
  if (typeof error.status !== 'string' || !CODE_NAMES.has(error.status)) {
    return `error.status ${String(error.status)} is not a google.rpc.Code name`;
  }
  return undefined;
}

/** Percent-encodes what a request target cannot carry raw, keeping the rest as it is. */
function target(text: string): string {
  return text.replace(/[^\x21-\x7e]|[#?]/gu, (c) =>
    /[\ud800-\udfff]/.test(c) ? '%EF%BF%BD' : encodeURIComponent(c),
  );
}

const prototypeKeys = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString');

/** JSON values with prototype-pollution keys sprinkled in. */
const pollutingJson = fc
  .tuple(prototypeKeys, fc.jsonValue({ maxDepth: 3 }), fc.dictionary(fc.string(), fc.jsonValue()))
  .map(
    ([key, value, rest]) =>
      `{"${key}":${JSON.stringify(value)},"constructor":{"prototype":{"polluted":true}},` +
      `${JSON.stringify(rest).slice(1)}`,
  );

const idArb = fc.oneof(
  fc.constantFrom(...[0, 1, 2].map((i) => `@seed${i}`)),
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '.', '..', '%', '%zz', '%3A', 'a%2Fb', 'A', '-a', 'a'.repeat(64), '\u0000'),
);

const pathArb = fc
  .tuple(
    idArb,
    fc.constantFrom(
      '/v1/operations',
      '/v1/operations/',
      '/v1/operations:batchWait',
      '/v1/operations/{id}',
      '/v1/operations/{id}:wait',
      '/v1/operations/{id}:cancel',
      '/v1/operations/{id}:watch',
      '/v1/operations/{id}:traverse',
      '/v1/operations/{id}:getParent',
      '/v1/operations/{id}:unknown',
      '/v1/operations/{id}/children',
      '/v1/operations/{id}/parent',
      '/v1/operations/{id}/tree',
      '/v1/operations/{id}/x/y',
      '/v2/operations/{id}',
      '/{id}',
      '/',
    ),
  )
  .map(([id, template]) => {
    const seed = /^@seed(\d)$/.exec(id);
    const real = seed ? (seeded[Number(seed[1])] ?? '').slice('operations/'.length) : id;
    return template.replace('{id}', target(real));
  });

const queryArb = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'pageSize',
          'pageToken',
          'filter',
          'maxDepth',
          'timeout',
          'alt',
          'fields',
          '__proto__',
          'constructor',
        ),
        fc.string({ maxLength: 10 }),
      ),
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.integer().map(String),
        fc.constantFrom('-1', '0', '1e309', 'NaN', '1.5', '99999999999', 'done = true', 'done='),
        fc.constantFrom('name:"x" AND (done = false OR metadata.step > 3)', '((((((', '"', '\\'),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs.length === 0
      ? ''
      : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`,
  );

const bodyArb: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        operationId: fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.constant(null)),
        parent: fc.oneof(fc.string(), fc.constantFrom('operations/x', 'operations/does-not-exist')),
        metadata: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.dictionary(fc.string(), fc.jsonValue()).map((d) => ({ '@type': 'a/b', ...d })),
        ),
        requestId: fc.oneof(fc.string(), fc.uuid()),
        timeout: fc.oneof(
          fc.constantFrom('0s', '1s', '-1s', '1.5s', '99999999999s', 's', '1m', 'NaN'),
          fc.string(),
          fc.double(),
        ),
        names: fc.oneof(
          fc.array(fc.string(), { maxLength: 5 }),
          fc.array(fc.constantFrom('operations/nope', 'operations/a'), { maxLength: 3 }),
          fc.constant(Array.from({ length: 101 }, (_, i) => `operations/x${i}`)),
        ),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  pollutingJson,
  fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((t) => JSON.stringify({ metadata: t })),
  fc.integer({ min: 1, max: 30_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.integer({ min: 1, max: 60_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc
    .integer({ min: 1, max: 10_000 })
    .map((n) => `{"metadata":{"@type":"a/b","deep":${'['.repeat(n)}${']'.repeat(n)}}}`),
  fc.constantFrom(
    'x'.repeat(300 * 1024),
    JSON.stringify({ metadata: { '@type': 'a/b', big: 'y'.repeat(260 * 1024) } }),
    '{"a":',
    'null',
    '[]',
    '"text"',
    '\u0000',
    '\ufeff{}',
  ),
);

const headersArb = fc.record(
  {
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/json; charset=nope',
        'application/merge-patch+json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        '*/*',
        '',
      ),
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) }),
    ),
    'x-lro-parent': fc.oneof(
      fc.constantFrom('operations/does-not-exist', '', 'nope'),
      fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) }),
    ),
    accept: fc.constantFrom('application/json', 'text/event-stream', '*/*'),
  },
  { requiredKeys: [] },
);

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'),
  path: pathArb,
  query: queryArb,
  headers: headersArb,
  body: bodyArb,
});

describe('HTTP API under arbitrary requests', () => {
  it('never answers a 5xx, always with Google error bodies, and keeps answering', async () => {
    const breaches: string[] = [];
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const reply = await rawRequest(s.api.url, r.method, r.path + r.query, {
          headers: r.headers,
          ...(r.body === undefined ? {} : { body: r.body }),
          timeoutMs: 30_000,
        });
        const breach = contractBreach(r.method, reply);
        if (breach) breaches.push(`${r.method} ${r.path}${r.query}: ${breach}`);
        return breach === undefined;
      }),
      { numRuns: 400, endOnFailure: true },
    );
    expect(breaches).toEqual([]);
    expect(s.api.process.exitCode).toBeNull();
    const list = await rawRequest(s.api.url, 'GET', '/v1/operations?pageSize=5');
    expect(list.status).toBe(200);
    const get = await rawRequest(s.api.url, 'GET', `/v1/${sentinel}`);
    expect(get.status, get.text).toBe(200);
    expect(get.json as Operation).toEqual({
      name: sentinel,
      done: true,
      metadata: progress(9),
      response: result('sentinel'),
    });
  });
});

/** Posts one raw push body to the subscriber; the HTTP status. */
async function push(body: unknown): Promise<number> {
  const reply = await rawRequest(
    s.subscriber.url,
    'POST',
    new URL(s.provisioned.pushEndpoint).pathname,
    {
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      timeoutMs: 30_000,
    },
  );
  return reply.status;
}

type Mutation =
  | 'none'
  | 'drop'
  | 'wrongType'
  | 'extra'
  | 'badEmitTime'
  | 'code0'
  | 'hugeMetadata'
  | 'badName'
  | 'notJson'
  | 'randomJson'
  | 'attributeDisagrees'
  | 'responseOnFailed'
  | 'badMetadata';

/**
 * An Any of arbitrary JSON that an event can carry: fc.jsonValue can make a `__proto__` key, which
 * an event refuses (exact JSON, shared/sdk/json-limits.ts), so values are kept only when exact.
 */
const anyArb = fc
  .dictionary(
    fc.string({ maxLength: 8 }).filter((k) => k !== '@type'),
    fc.jsonValue({ maxDepth: 2 }).filter((v) => inexactJson(JSON.stringify(v)) === undefined),
    { maxKeys: 4 },
  )
  .map((d) => ({ '@type': 'type.googleapis.com/fuzz.Any', ...d }));

const emitTimeArb = fc
  .date({
    min: new Date('1971-01-01T00:00:00Z'),
    max: new Date('2200-01-01T00:00:00Z'),
    noInvalidDate: true,
  })
  .map((d) => d.toISOString());

const eventIdArb = fc.oneof(
  fc.uuid(),
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: 40,
  }),
);

/** A valid event of one of the three types for `operation`. */
function validEventArb(operation: string) {
  return fc
    .record({
      type: fc.constantFrom('metadata', 'succeeded', 'failed'),
      eventId: eventIdArb,
      emitTime: emitTimeArb,
      metadata: fc.option(anyArb, { nil: undefined }),
      response: fc.option(anyArb, { nil: undefined }),
      error: fc.record({
        code: fc.integer({ min: 1, max: 16 }),
        message: fc.string({ maxLength: 50 }),
        details: fc.array(anyArb, { maxLength: 2 }),
      }),
    })
    .map((e) => {
      const event: Record<string, unknown> = {
        operation,
        type: e.type,
        eventId: e.eventId,
        emitTime: e.emitTime,
      };
      if (e.metadata !== undefined) event.metadata = e.metadata;
      if (e.type === 'succeeded' && e.response !== undefined) event.response = e.response;
      if (e.type === 'failed') event.error = e.error;
      return event;
    });
}

function mutate(
  event: Record<string, unknown>,
  mutation: Mutation,
  pick: number,
  junk: unknown,
): { data: Buffer; attributes: Record<string, string> } {
  const attributes: Record<string, string> = {
    operation: String(event.operation),
    type: String(event.type),
  };
  const e: Record<string, unknown> = { ...event };
  const required = [
    'operation',
    'type',
    'eventId',
    'emitTime',
    ...(e.type === 'failed' ? ['error'] : []),
  ];
  const field = required[pick % required.length] as string;
  switch (mutation) {
    case 'none':
      break;
    case 'drop':
      delete e[field];
      break;
    case 'wrongType':
      e[field] = [42, null, true, { x: 1 }, ['a']][pick % 5];
      break;
    case 'extra':
      e[['respone', 'result', 'extra', 'metadata2', 'Type'][pick % 5] as string] = junk ?? 1;
      break;
    case 'badEmitTime':
      e.emitTime = ['yesterday', '2026-13-01T00:00:00Z', '', '1700000000', '2026-01-01'][pick % 5];
      break;
    case 'code0':
      e.type = 'failed';
      e.error = { code: [0, -1, 17, 1.5, '3'][pick % 5], message: 'x' };
      attributes.type = 'failed';
      break;
    case 'hugeMetadata':
      e.metadata = { '@type': 'a/b', big: 'z'.repeat(300 * 1024) };
      break;
    case 'badName':
      e.operation = [
        'op/x',
        'operations/',
        'operations/UPPER',
        'operations/a/b',
        `operations/${'a'.repeat(64)}`,
      ][pick % 5];
      delete attributes.operation;
      break;
    case 'attributeDisagrees':
      if (pick % 2 === 0) attributes.operation = 'operations/someone-else';
      else attributes.type = e.type === 'metadata' ? 'succeeded' : 'metadata';
      break;
    case 'responseOnFailed':
      e.type = 'failed';
      e.error = { code: 2, message: 'x' };
      e.response = { '@type': 'a/b' };
      attributes.type = 'failed';
      break;
    case 'badMetadata':
      e.metadata = [{ noType: true }, 'text', 3, [], { '@type': 'no slash' }][pick % 5];
      break;
    case 'notJson':
      return {
        data: Buffer.from(['{', '', '\u0000', '{"a":1', 'undefined'][pick % 5] as string),
        attributes,
      };
    case 'randomJson':
      return { data: Buffer.from(JSON.stringify(junk) ?? 'null'), attributes };
  }
  return { data: Buffer.from(JSON.stringify(e)), attributes };
}

describe('subscriber under arbitrary event messages', () => {
  it('acknowledges and dead-letters malformed events, never a 5xx but NOT_FOUND retries', async () => {
    const existing: string[] = [];
    for (let i = 0; i < 4; i++) existing.push((await s.store.create()).operation.name);
    const dlq = collect(s.messaging, s.provisioned.deadLetterSubscription);
    const malformed: string[] = [];
    const failures: string[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.constantFrom(...existing),
            fc.stringMatching(/^[a-z][a-z0-9]{3,10}$/).map((id) => `operations/unknown-${id}`),
          ),
          fc.constantFrom<Mutation>(
            'none',
            'none',
            'drop',
            'wrongType',
            'extra',
            'badEmitTime',
            'code0',
            'hugeMetadata',
            'badName',
            'notJson',
            'randomJson',
            'attributeDisagrees',
            'responseOnFailed',
            'badMetadata',
          ),
          fc.nat(),
          fc.jsonValue({ maxDepth: 3 }),
          fc.context(),
          async (operation, mutation, pick, junk, ctx) => {
            const event = fc.sample(validEventArb(operation), {
              numRuns: 1,
              seed: pick,
            })[0] as Record<string, unknown>;
            const { data, attributes } = mutate(event, mutation, pick, junk);
            const messageId = randomUUID();
            const decoded = decodeEvent(data, attributes);
            // The mutations are chosen so that only the untouched event is valid.
            if (decoded.ok !== (mutation === 'none')) {
              failures.push(`${mutation}: decodeEvent says ${decoded.ok ? 'valid' : 'invalid'}`);
              return false;
            }
            const status = await push(pushBody(data, attributes, messageId));
            ctx.log(`${mutation} ${operation} -> ${status}`);
            if (mutation !== 'none') {
              malformed.push(messageId);
              if (status < 200 || status >= 300) failures.push(`${mutation} answered ${status}`);
              return status >= 200 && status < 300;
            }
            const known = existing.includes(operation);
            if (known && (status < 200 || status >= 300))
              failures.push(`valid event answered ${status}`);
            // An unknown operation fails the delivery (retried, then dead-lettered), except progress
            // without metadata, which changes nothing anyway.
            const empty = event.type === 'metadata' && event.metadata === undefined;
            return known || empty ? status >= 200 && status < 300 : status >= 400;
          },
        ),
        { numRuns: 300, endOnFailure: true },
      );
      expect(failures).toEqual([]);
      // Pushes that are not Pub/Sub messages at all are acknowledged too.
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
            fc.constantFrom(
              '{"message":{}}',
              '{"message":{"data":"!!!","messageId":""}}',
              '{"message":null}',
            ),
          ),
          async (body) => (await push(body)) < 500,
        ),
        { numRuns: 40 },
      );
      await until(
        () => {
          const seen = new Set(
            dlq.received.map((m) => m.attributes[DEAD_LETTER_ATTRIBUTES.messageId]),
          );
          return malformed.every((id) => seen.has(id));
        },
        30_000,
        `${malformed.length} malformed events on the dead-letter topic`,
      );
    } finally {
      await dlq.close();
    }
    expect(s.subscriber.process.exitCode).toBeNull();
  });

  it('never changes a done operation, whatever late events arrive', async () => {
    const done: Operation[] = [];
    for (const end of ['succeeded', 'failed'] as const) {
      const { operation } = await s.store.create({ metadata: progress(1) });
      const terminal =
        end === 'succeeded'
          ? workerEvent(operation.name, 'succeeded', {
              metadata: progress(2),
              response: result('final'),
            })
          : workerEvent(operation.name, 'failed', {
              metadata: progress(2),
              error: { code: 10, message: 'final' },
            });
      const status = await push(
        pushBody(Buffer.from(JSON.stringify(terminal)), { operation: operation.name, type: end }),
      );
      expect(status).toBeLessThan(300);
      done.push((await s.store.get(operation.name)).operation);
    }
    expect(done.every((op) => op.done)).toBe(true);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: done.length - 1 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        async (which, seeds) => {
          const before = done[which] as Operation;
          for (const seed of seeds) {
            const event = fc.sample(validEventArb(before.name), { numRuns: 1, seed })[0] as Record<
              string,
              unknown
            >;
            const status = await push(
              pushBody(Buffer.from(JSON.stringify(event)), {
                operation: before.name,
                type: String(event.type),
              }),
            );
            if (status < 200 || status >= 300) return false;
          }
          const after = (await s.store.get(before.name)).operation;
          expect(after).toEqual(before);
          return true;
        },
      ),
      { numRuns: 40 },
    );
  });
});
