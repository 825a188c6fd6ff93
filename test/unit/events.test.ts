/** The event contract: validation rules, decoding of messages, and the committed JSON Schema. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { decodeEvent, eventSchemaText } from '../../shared/sdk/events.js';
import { eventMessageOf } from '../../shared/service/events/subscriber.js';

const base = {
  operation: 'operations/job-1',
  eventId: '5c4e9d7e-3a57-4df6-9c1b-0c0f1c1c9d11',
  emitTime: '2026-11-28T01:02:03.456Z',
};
const any = { '@type': 'type.googleapis.com/test.Thing', x: 1 };
const encode = (value: unknown) => Buffer.from(JSON.stringify(value));
const reasonOf = (value: unknown, attributes: Record<string, string> = {}) => {
  const decoded = decodeEvent(encode(value), attributes);
  return decoded.ok ? undefined : decoded.reason;
};

describe('decodeEvent', () => {
  it.each([
    ['progress', { ...base, type: 'metadata', metadata: any }],
    ['progress without metadata', { ...base, type: 'metadata' }],
    [
      'success with response and metadata',
      { ...base, type: 'succeeded', response: any, metadata: any },
    ],
    ['success without response', { ...base, type: 'succeeded' }],
    [
      'failure with details',
      { ...base, type: 'failed', error: { code: 13, message: 'm', details: [any] } },
    ],
    ['version 1', { ...base, version: 1, type: 'metadata', metadata: any }],
    [
      'an emit time with an offset',
      { ...base, emitTime: '2026-11-28T02:02:03+01:00', type: 'succeeded' },
    ],
  ])('accepts %s', (_, value) => {
    expect(reasonOf(value)).toBeUndefined();
  });

  it.each([
    ['an unknown type', { ...base, type: 'progress' }, 'type'],
    ['an unknown field', { ...base, type: 'succeeded', respone: any }, 'respone'],
    [
      'a response on failure',
      { ...base, type: 'failed', error: { code: 2 }, response: any },
      'response',
    ],
    ['a response on progress', { ...base, type: 'metadata', response: any }, 'response'],
    ['failure without error', { ...base, type: 'failed' }, 'error'],
    ['failure with code 0', { ...base, type: 'failed', error: { code: 0 } }, 'code 0'],
    ['a code beyond 16', { ...base, type: 'failed', error: { code: 17 } }, 'error.code'],
    ['a version other than 1', { ...base, version: 2, type: 'succeeded' }, 'version'],
    ['an empty event ID', { ...base, eventId: '', type: 'succeeded' }, 'eventId'],
    [
      'a time that is not RFC 3339',
      { ...base, emitTime: '28/11/2026', type: 'succeeded' },
      'emitTime',
    ],
    [
      'a bad operation name',
      { ...base, operation: 'operations/Job_1', type: 'succeeded' },
      'operation',
    ],
    ['metadata without @type', { ...base, type: 'metadata', metadata: { x: 1 } }, 'metadata'],
  ])('rejects %s', (_, value, mention) => {
    expect(reasonOf(value)).toContain(mention);
  });

  it('rejects attributes that disagree with the body, and accepts agreeing ones', () => {
    const value = { ...base, type: 'succeeded' };
    expect(reasonOf(value, { operation: 'operations/job-2' })).toContain('disagrees');
    expect(reasonOf(value, { type: 'failed' })).toContain('disagrees');
    expect(reasonOf(value, { operation: base.operation, type: 'succeeded' })).toBeUndefined();
  });

  it('rejects what is not JSON and what is too large', () => {
    expect(decodeEvent(Buffer.from('nope'))).toMatchObject({ ok: false });
    const big = {
      ...base,
      type: 'metadata',
      metadata: { ...any, pad: 'x'.repeat(defaults.eventMaxBytes) },
    };
    expect(reasonOf(big)).toContain('exceeds');
  });
});

describe('eventMessageOf', () => {
  const message = {
    data: Buffer.from('{}').toString('base64'),
    attributes: { a: 'b' },
    messageId: '42',
  };
  it('reads the CloudEvent data of a gen2 trigger and a raw push body', () => {
    const want = { data: Buffer.from('{}'), attributes: { a: 'b' }, messageId: '42' };
    expect(eventMessageOf({ data: { message, subscription: 's' } })).toEqual(want);
    expect(eventMessageOf({ message, subscription: 's' })).toEqual(want);
    expect(eventMessageOf({ data: { nothing: true } })).toBeUndefined();
  });
});

describe('schema/event.schema.json', () => {
  it('is what the zod schema generates (run "npm run schema" after changing it)', () => {
    const committed = readFileSync(
      resolve(import.meta.dirname, '../../schema/event.schema.json'),
      'utf8',
    );
    expect(committed).toBe(eventSchemaText());
  });
});
