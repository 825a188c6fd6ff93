import { describe, expect, it } from 'vitest';
import { formatDuration, parseDurationMs } from '../../shared/sdk/duration.js';
import { Code, httpStatusOf, LroError, toLroError } from '../../shared/sdk/errors.js';
import {
  CreateOperationRequestSchema,
  ListOperationsRequestSchema,
  newOperationId,
  OperationSchema,
  operationIdOf,
  parseOrInvalid,
  toOperationName,
} from '../../shared/sdk/model.js';
import { loadConfig } from '../../shared/service/runtime/config.js';

describe('operation names and IDs', () => {
  it('accepts caller IDs of the documented form and generated UUIDs', () => {
    expect(toOperationName('a')).toBe('operations/a');
    expect(toOperationName('job-42')).toBe('operations/job-42');
    expect(operationIdOf(toOperationName(newOperationId()))).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each(['', '-a', 'a-', 'A', 'a_b', 'a'.repeat(64), 'operations/', 'x/y', 'a b'])(
    'rejects %j with INVALID_ARGUMENT',
    (id) => {
      expect(() => toOperationName(id)).toThrowError(LroError);
      try {
        toOperationName(id);
      } catch (err) {
        expect((err as LroError).code).toBe(Code.INVALID_ARGUMENT);
      }
    },
  );
});

describe('wire schemas', () => {
  it('parses an Operation with Any metadata and a Status error', () => {
    const op = OperationSchema.parse({
      name: 'operations/x',
      done: true,
      metadata: { '@type': 'type.googleapis.com/demo.Progress', percent: 10 },
      error: { code: 5, message: 'gone', details: [{ '@type': 'type.googleapis.com/x.Y', a: 1 }] },
    });
    expect(op.error?.details?.[0]?.a).toBe(1);
  });

  it('rejects unknown fields in a create request', () => {
    expect(() => parseOrInvalid(CreateOperationRequestSchema, { foo: 1 }, 'request')).toThrow(
      /foo/,
    );
  });

  it('caps page sizes and defaults them', () => {
    expect(ListOperationsRequestSchema.parse({ pageSize: '5000' }).pageSize).toBe(1000);
    expect(ListOperationsRequestSchema.parse({}).pageSize).toBe(50);
    expect(ListOperationsRequestSchema.safeParse({ pageSize: '-1' }).success).toBe(false);
  });
});

describe('durations', () => {
  it('round-trips the JSON form', () => {
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('1.5s')).toBe(1_500);
    expect(parseDurationMs('30')).toBeUndefined();
    expect(formatDuration(1_500)).toBe('1.5s');
  });
});

describe('errors', () => {
  it('maps every code to an HTTP status and renders Google error bodies', () => {
    for (let code = 0; code <= 16; code++) expect(httpStatusOf[code as Code]).toBeGreaterThan(0);
    expect(new LroError(Code.NOT_FOUND, 'nope').toJSON()).toEqual({
      error: { code: 404, message: 'nope', status: 'NOT_FOUND' },
    });
    const wrapped = toLroError(new Error('boom'));
    expect(wrapped.code).toBe(Code.INTERNAL);
    expect(wrapped.cause).toBeInstanceOf(Error);
  });
});

describe('config', () => {
  it('has the documented local defaults', () => {
    const config = loadConfig({});
    expect(config.projectId).toBe('lro-local');
    expect(config.bigtable.table).toBe('operations');
    expect(config.topics).toEqual({
      events: 'lro-events',
      notifications: 'lro-notifications',
      wakeups: 'lro-wakeups',
      deadLetter: 'lro-events-dead-letter',
    });
    expect(config.port).toBe(8080);
    expect(Object.isFrozen(config.bigtable)).toBe(true);
  });

  it('names every bad variable', () => {
    expect(() => loadConfig({ PORT: 'x', LRO_RETENTION: '3 days' })).toThrow(
      /PORT.*LRO_RETENTION|LRO_RETENTION.*PORT/,
    );
  });
});
