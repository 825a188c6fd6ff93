/**
 * Every Bigtable call of the stores carries the per-call deadline (`gax()`, i.e.
 * defaults.bigtableCallTimeoutMs), so that a stalled Bigtable fails a request or a delivery
 * instead of holding it for the client library's own limits (a minute and more for a mutate).
 *
 * - Each call site: every RPC the stores make through their table (`this.table.…(…)`) passes
 *   `gaxOptions` with a deadline (`gax()`, or a shorter `{ timeout }` such as the failure
 *   record's), and no module but the store opens a Bigtable client.
 * - In effect: with Bigtable frozen (SIGSTOP), every store method fails UNAVAILABLE once its
 *   first call's deadline passed, none hangs.
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../shared/sdk/defaults.js';
import { Code, LroError } from '../shared/sdk/errors.js';
import type { Config } from '../shared/service/runtime/config.js';
import { DeadLetterStore } from '../shared/service/store/bigtable/dead-letters.js';
import {
  BigtableOperationStore,
  ensureTable,
} from '../shared/service/store/bigtable/operation-store.js';
import { type PrivateBigtable, startPrivateBigtable } from './faults/support.js';
import { testConfig } from './support/env.js';
import { ROOT } from './support/functions.js';

const STORES = [
  'shared/service/store/bigtable/operation-store.ts',
  'shared/service/store/bigtable/dead-letters.ts',
];

/**
 * The text of each RPC made through `this.table`, or through a row handle taken from it
 * (`const row = this.table.row(key)`): from the receiver to the end of its call chain
 * (`.row(key).filter(filter, options)`), parentheses balanced. Taking a handle is no call.
 */
function tableCalls(source: string): { line: number; text: string }[] {
  const handles = [
    ...source.matchAll(/const\s+([A-Za-z_$][\w$]*)\s*=\s*this\.table\s*\.\s*row\(/g),
  ];
  const receivers = ['this\\.table', ...handles.map((h) => h[1] as string)];
  const calls: { line: number; text: string }[] = [];
  const pattern = new RegExp(`(?<![\\w$.])(${receivers.join('|')})\\s*\\.`, 'g');
  for (let match = pattern.exec(source); match; match = pattern.exec(source)) {
    let i = match.index + match[0].length;
    const names: string[] = [];
    for (;;) {
      const name = /^\s*([A-Za-z_$][\w$]*)/.exec(source.slice(i));
      if (!name) break;
      names.push(name[1] as string);
      i += name[0].length;
      while (/\s/.test(source[i] ?? '')) i++;
      if (source[i] !== '(') break;
      let depth = 0;
      for (; i < source.length; i++) {
        if (source[i] === '(') depth++;
        else if (source[i] === ')' && --depth === 0) break;
      }
      i++;
      while (/\s/.test(source[i] ?? '')) i++;
      if (source[i] !== '.') break;
      i++;
    }
    const text = source.slice(match.index, i);
    if (!text.includes('(')) continue; // a property (`row.id`), no call
    if (names.length === 1 && names[0] === 'row') continue; // a handle, no call yet
    const line = source.slice(0, match.index).split('\n').length;
    calls.push({ line, text });
  }
  return calls;
}

describe('Bigtable call sites', () => {
  it('every call of the stores passes the per-call deadline', () => {
    let checked = 0;
    for (const file of STORES) {
      const source = readFileSync(join(ROOT, file), 'utf8');
      for (const call of tableCalls(source)) {
        checked++;
        expect(call.text, `${file}:${call.line} calls Bigtable without gaxOptions`).toMatch(
          /gaxOptions\s*(:\s*(gax\(\)|\{\s*timeout:)|[,}])/,
        );
      }
    }
    // The scan found the calls (the operation store alone makes dozens).
    expect(checked).toBeGreaterThan(30);
  });

  it('the scan sees a call without the deadline', () => {
    const calls = tableCalls(
      "await this.call(() => this.table.mutate({ key, method: 'delete' }));\n" +
        'const [x] = await this.table.row(k).filter(f, { onMatch: [], gaxOptions: gax() });\n' +
        'const row = this.table.row(k);\n' +
        'await row.filter(f, { onMatch: [] });',
    );
    expect(calls.map((c) => /gaxOptions/.test(c.text))).toEqual([false, true, false]);
  });

  it('only the operation store opens Bigtable clients', async () => {
    const files = (await readdir(join(ROOT, 'shared'), { recursive: true }))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join('shared', f));
    const opening = files.filter((f) => /new Bigtable\(/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(opening).toEqual([join('shared', 'service', 'store', 'bigtable', 'operation-store.ts')]);
  });
});

describe('Bigtable frozen', () => {
  let bigtable: PrivateBigtable;
  let config: Config;
  let store: BigtableOperationStore;
  let deadLetters: DeadLetterStore;

  beforeAll(async () => {
    bigtable = await startPrivateBigtable();
    config = testConfig({ BIGTABLE_EMULATOR_HOST: bigtable.host });
    await ensureTable(config);
    store = new BigtableOperationStore(config);
    deadLetters = new DeadLetterStore(config);
    // Connections open before the freeze, as in a running instance.
    await store.create({ id: 'parent' });
    await deadLetters.lastFailure(Buffer.from('x'));
  });

  afterAll(async () => {
    bigtable?.resume();
    await Promise.allSettled([store?.close(), deadLetters?.close()]);
    await bigtable?.stop();
  });

  it('fails every store method UNAVAILABLE instead of hanging', async () => {
    const data = Buffer.from('{}');
    const entry = {
      id: '8000000000000-m1',
      reason: 'r',
      data,
      attributes: {},
      deadLetterTime: new Date(),
    };
    const calls: Record<string, () => Promise<unknown>> = {
      create: () => store.create({ id: 'child', parent: 'operations/parent' }),
      get: () => store.get('operations/parent'),
      list: () => store.list({ filter: '', pageSize: 10, pageToken: '' }),
      listChildren: () => store.listChildren('operations/parent', { pageSize: 10, pageToken: '' }),
      traverse: () => store.traverse('operations/parent', { maxDepth: 3 }),
      getParent: () => store.getParent('operations/parent'),
      delete: () => store.delete('operations/parent'),
      requestCancel: () => store.requestCancel('operations/parent'),
      complete: () => store.complete('operations/parent', {}),
      updateMetadata: () =>
        store.updateMetadata(
          'operations/parent',
          { '@type': 'type.googleapis.com/t.M' },
          { emitTime: new Date(), eventId: 'e1' },
        ),
      heartbeat: () => store.heartbeat('operations/parent', { time: new Date() }),
      listDue: () => store.listDue(new Date(), 10),
      expire: () => store.expire('operations/parent', new Date()),
      reschedule: () =>
        store.reschedule(
          { key: 'd/x', operation: 'operations/parent', due: new Date() },
          new Date(Date.now() + 60_000),
        ),
      putDeadLetter: () => deadLetters.put(entry),
      getDeadLetter: () => deadLetters.get(entry.id),
      listDeadLetters: () => deadLetters.list({ pageSize: 10, pageToken: '' }),
      replay: () => deadLetters.replay(entry.id, async () => undefined),
      lastFailure: () => deadLetters.lastFailure(data),
      forgetFailure: () => deadLetters.forgetFailure(data),
    };
    bigtable.freeze();
    try {
      // A call without the deadline waits for the library's own (a minute and more for a
      // mutate): well past this, which leaves the deadline ample room on a loaded machine.
      const hangMs = defaults.bigtableCallTimeoutMs * 3;
      const outcomes = await Promise.all(
        Object.entries(calls).map(async ([name, call]) => {
          let timer: NodeJS.Timeout | undefined;
          const hang = new Promise<string>((resolve) => {
            timer = setTimeout(() => resolve('still waiting'), hangMs);
          });
          const settled = call().then(
            () => 'resolved',
            (err: unknown) =>
              err instanceof LroError ? Code[err.code] : `threw ${String(err).slice(0, 80)}`,
          );
          const outcome = await Promise.race([settled, hang]);
          clearTimeout(timer);
          return [name, outcome] as const;
        }),
      );
      expect(Object.fromEntries(outcomes)).toEqual(
        Object.fromEntries(Object.keys(calls).map((name) => [name, 'UNAVAILABLE'])),
      );
    } finally {
      bigtable.resume();
    }
  }, 120_000);
});
