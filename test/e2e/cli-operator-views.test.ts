/**
 * The operator views of the `lro` CLI, run in-process against the operations function and the
 * subscriber (real HTTP, the emulators): `lro get` prints the times, `lro list` has created and
 * state columns, newest first, `--name` searches a prefix, `lro history` prints the events.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Exit, runCli } from '../../bin/cli.js';
import { formatSpan, formatTimedList } from '../../bin/format-times.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { type EventStack, startEventStack } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

let s: EventStack;
let api: RunningFunction;

beforeAll(async () => {
  s = await startEventStack();
  api = await startFunction('operations', s.env);
});

afterAll(async () => {
  await api?.stop();
  await s?.close();
});

async function lro(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    argv,
    { apiUrl: api.url },
    {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
    },
  );
  return { code, stdout, stderr };
}

async function push(operation: string, type: string, fields: Record<string, unknown> = {}) {
  const body = {
    operation,
    type,
    eventId: randomUUID(),
    emitTime: new Date().toISOString(),
    ...fields,
  };
  const reply = await fetch(s.stack.pushEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(body)).toString('base64'),
        attributes: { operation, type },
        messageId: randomUUID(),
        publishTime: new Date().toISOString(),
      },
    }),
  });
  expect(reply.status).toBeLessThan(300);
}

const tag = () => `cli${randomUUID().slice(0, 6)}`;

describe('lro get', () => {
  it('prints when the operation was created, updated and ended, its limits and last heartbeat', async () => {
    const id = tag();
    expect(
      (await lro('create', '--id', id, '--deadline', '2h', '--heartbeat-timeout', '60s')).code,
    ).toBe(Exit.ok);
    let out = await lro('get', id);
    expect(out.code).toBe(Exit.ok);
    expect(out.stdout).toMatch(/^ {2}created: {3}\d{4}-\d\d-\d\dT[\d:.]+Z {2}\(\d+(ms|s) ago\)$/m);
    expect(out.stdout).toMatch(/^ {2}deadline: {2}\S+Z {2}\(in 1h 59m\)$/m);
    expect(out.stdout).toMatch(/^ {2}heartbeat: none yet, timeout 60s$/m);

    await push(`operations/${id}`, 'heartbeat');
    expect((await lro('cancel', id)).code).toBe(Exit.ok);
    out = await lro('get', id);
    expect(out.stdout).toMatch(/^ {2}heartbeat: last \d+(ms|s) ago, timeout 60s$/m);
    expect(out.stdout).toMatch(/^ {2}cancellation pending: requested .* ago; the worker has not/m);

    await push(`operations/${id}`, 'failed', { error: { code: 1, message: 'stopped' } });
    out = await lro('get', id);
    expect(out.stdout).toMatch(/^ {2}ended: {5}\S+Z {2}\(.* ago, took .+\)$/m);
    expect(out.stdout).not.toMatch(/cancellation pending/);
    expect(out.stdout).toMatch(/^ {2}expires: {3}\S+Z {2}\(in 29d 23h\)$/m);
    // --json stays the Operation alone.
    const json = JSON.parse((await lro('get', id, '--json')).stdout);
    expect(Object.keys(json).sort()).toEqual(['done', 'error', 'name']);
  });
});

describe('lro list', () => {
  it('lists newest first with created, duration and state columns; --name reads a prefix', async () => {
    const prefix = tag();
    const base = Date.now() - 120_000;
    for (const [suffix, offset] of [
      ['a', 0],
      ['c', 60_000],
      ['b', 30_000],
    ] as const) {
      const clocked = new BigtableOperationStore(s.config, () => base + offset);
      await clocked.create({ id: `${prefix}-${suffix}` });
      await clocked.close();
    }
    await push(`operations/${prefix}-a`, 'succeeded');
    await lro('create', '--id', `${prefix}x-other`);

    const out = await lro('list', '--name', `${prefix}-`);
    expect(out.code).toBe(Exit.ok);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CREATED\s+DURATION\s+STATE$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([
      `operations/${prefix}-c`,
      `operations/${prefix}-b`,
      `operations/${prefix}-a`,
    ]);
    expect(lines[1]).toMatch(/ 1m \d\ds ago\s+RUNNING$/);
    expect(lines[3]).toMatch(/ 2m \d\ds ago\s+took \d+m \d\ds\s+SUCCEEDED$/);

    const oldest = await lro('list', '--name', `${prefix}-`, '--order-by', 'create_time asc');
    expect(
      oldest.stdout
        .split('\n')
        .slice(1, 4)
        .map((line) => line.split(/\s+/)[0]),
    ).toEqual([`operations/${prefix}-a`, `operations/${prefix}-b`, `operations/${prefix}-c`]);
    const json = JSON.parse((await lro('list', '--name', prefix, '--json')).stdout);
    expect(json.operations.map((op: { name: string }) => op.name)).toEqual([
      `operations/${prefix}x-other`,
      `operations/${prefix}-c`,
      `operations/${prefix}-b`,
      `operations/${prefix}-a`,
    ]);
    expect(json.times).toHaveLength(4);

    expect((await lro('list', '--order-by', 'update_time')).code).toBe(Exit.usage);
    expect((await lro('list', '--name', 'Bad*')).code).toBe(Exit.usage);
  });

  it('shows an empty page plainly, and widths follow the longest cell', () => {
    expect(formatTimedList([], [], 0)).toBe('(no operations)');
    expect(formatSpan(999)).toBe('999ms');
    expect(formatSpan(61_000)).toBe('1m 01s');
    expect(formatSpan(3 * 3600_000 + 5 * 60_000)).toBe('3h 05m');
    expect(formatSpan(50 * 3600_000)).toBe('2d 2h');
  });
});

describe('lro history', () => {
  it('prints the events newest first with their outcomes, and all of them with --json', async () => {
    const id = tag();
    await lro('create', '--id', id);
    const progress = { '@type': 'type.googleapis.com/test.Progress', percent: 10 };
    await push(`operations/${id}`, 'metadata', { metadata: progress });
    await push(`operations/${id}`, 'heartbeat');
    await push(`operations/${id}`, 'heartbeat');
    await push(`operations/${id}`, 'succeeded');
    await push(`operations/${id}`, 'failed', { error: { code: 13, message: 'late' } });

    const out = await lro('history', id);
    expect(out.code).toBe(Exit.ok);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`operations/${id}: 4 entries, newest first`);
    expect(lines[1]).toMatch(/failed\s+ignored \(already ended\), emitted \S+, eventId \S+$/);
    expect(lines[2]).toMatch(/succeeded\s+applied,/);
    expect(lines[3]).toMatch(/heartbeat x2 since \S+Z$/);
    expect(lines[4]).toMatch(/metadata\s+applied,/);

    const json = JSON.parse((await lro('history', id, '--json')).stdout);
    expect(json.events.map((e: { outcome: string }) => e.outcome)).toEqual([
      'IGNORED',
      'APPLIED',
      'HEARTBEAT',
      'APPLIED',
    ]);
    const missing = await lro('history', `nobody-${tag()}`);
    expect(missing.code).toBe(Exit.apiError);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });
});
