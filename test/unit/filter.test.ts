import { describe, expect, it } from 'vitest';
import { Code, LroError } from '../../shared/sdk/errors.js';
import { compileFilter } from '../../shared/service/store/filter.js';
import { PageTokens } from '../../shared/service/store/page-token.js';
import type { OperationRecord } from '../../shared/service/store/store.js';

const record = (
  over: Partial<OperationRecord> & { done?: boolean; code?: number } = {},
): OperationRecord => ({
  operation: {
    name: 'operations/a',
    done: over.done ?? false,
    metadata: { '@type': 'type.googleapis.com/t.M' },
    ...(over.code !== undefined ? { error: { code: over.code, message: 'x' } } : {}),
  },
  createTime: over.createTime ?? new Date('2026-01-01T00:00:00Z'),
  updateTime: over.updateTime ?? new Date('2026-01-02T00:00:00Z'),
  ...(over.parent !== undefined ? { parent: over.parent } : {}),
});

describe('filters', () => {
  it.each([
    ['', record(), true],
    ['done', record({ done: true }), true],
    ['done', record(), false],
    ['NOT done', record(), true],
    ['-done', record({ done: true }), false],
    ['done = false', record(), true],
    ['done != true', record({ done: true }), false],
    ['error.code = 1', record({ done: true, code: 1 }), true],
    ['error.code = CANCELLED', record({ done: true, code: 1 }), true],
    ['error.code != 0', record(), false],
    ['create_time >= "2026-01-01T00:00:00Z"', record(), true],
    ['createTime < "2026-01-01T00:00:00Z"', record(), false],
    ['update_time > "2026-01-01T12:00:00Z" AND NOT done', record(), true],
    ['metadata.@type = "type.googleapis.com/t.M"', record(), true],
    ['metadata.@type = "type.googleapis.com/t.X" OR done', record({ done: true }), true],
    [
      '(done OR error.code = 5) AND parent = "operations/p"',
      record({ done: true, parent: 'operations/p' }),
      true,
    ],
    ['done parent = "operations/p"', record({ done: true }), false],
  ])('%s', (filter, r, expected) => {
    expect(compileFilter(filter)(r)).toBe(expected);
  });

  it.each([
    'done = maybe',
    'colour = "red"',
    'done AND',
    '(done',
    'error.code = "x"',
    'create_time > "yesterday"',
    'done ! x',
    'a & b',
    'name > "x"',
  ])('rejects %j with INVALID_ARGUMENT', (filter) => {
    let thrown: unknown;
    try {
      compileFilter(filter);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LroError);
    expect((thrown as LroError).code).toBe(Code.INVALID_ARGUMENT);
  });
});

describe('page tokens', () => {
  const tokens = new PageTokens('key');
  it('round-trips a position for the same scope', () => {
    expect(tokens.decode(tokens.encode('abc', 'list\ndone'), 'list\ndone')).toBe('abc');
  });
  it('refuses other scopes, other keys, and stale tokens', () => {
    const token = tokens.encode('abc', 'list\n', 1_000);
    expect(() => tokens.decode(token, 'list\ndone', 2_000)).toThrow(LroError);
    expect(() => new PageTokens('other').decode(token, 'list\n', 2_000)).toThrow(
      /invalid page token/,
    );
    expect(() => tokens.decode(token, 'list\n', 1_000 + 25 * 3600 * 1000)).toThrow(/expired/);
  });
});
