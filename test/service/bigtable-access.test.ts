/**
 * Every Bigtable call of the service goes through the one access module
 * (shared/service/store/bigtable/access.ts), whose wrapper passes the per-call deadline and maps
 * failures to LroErrors. In every file of shared/ but the access module:
 *
 * - no import of @google-cloud/bigtable (static, dynamic or require), so no code can open a
 *   client or name the library's types;
 * - no use of `openTable` or `TableConnection` (the raw client and table, for the table's
 *   administration and tests); the access keeps its client and table in `#private` fields;
 * - no call of a table's or row's API: `.row(`, `.table(`, `.instance(` (handles, whose `filter`,
 *   `save`, … are RPCs), and `.mutate(`, `.getRows(`, `.createReadStream(`, `.checkAndMutate(`, …
 *   on anything but an access (`access.mutate(…)`, `this.access.checkAndMutate(…)`).
 *
 * The deadline in effect, with Bigtable frozen: test/bigtable-call-timeout.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/functions.js';

const ACCESS = join('shared', 'service', 'store', 'bigtable', 'access.ts');

/** Methods of the library's tables, rows, instances and clients that no other module may call. */
const LIBRARY_CALLS = [
  'row',
  'table',
  'instance',
  'mutate',
  'getRows',
  'createReadStream',
  'sampleRowKeys',
  'checkAndMutate',
  'createFamily',
  'getFamilies',
  'deleteRows',
  'truncate',
];
/** What the access module's wrapper offers under the same names. */
const WRAPPED = new Set(['mutate', 'checkAndMutate']);

/** The bypasses in one file's source: `line: what`. */
function bypasses(source: string): string[] {
  const found: string[] = [];
  const lineOf = (index: number) => source.slice(0, index).split('\n').length;
  const library = /(?:from\s*|import\s*\(\s*|require\s*\(\s*)['"]@google-cloud\/bigtable/g;
  for (const match of source.matchAll(library)) {
    found.push(`${lineOf(match.index)}: imports @google-cloud/bigtable`);
  }
  for (const match of source.matchAll(/\b(openTable|TableConnection)\b/g)) {
    found.push(`${lineOf(match.index)}: uses ${match[1]}`);
  }
  const call = new RegExp(
    `([\\w$]*)\\s*\\??\\.\\s*(${LIBRARY_CALLS.join('|')})\\s*(?:<[^>]*>)?\\s*\\(`,
    'g',
  );
  for (const match of source.matchAll(call)) {
    const [, receiver, method] = match;
    if (receiver === 'access' && WRAPPED.has(method as string)) continue;
    found.push(`${lineOf(match.index)}: calls ${receiver || '(…)'}.${method}(`);
  }
  return found;
}

describe('Bigtable access', () => {
  it('no code in shared/ calls Bigtable but through the access module', () => {
    const files = (readdirSync(join(ROOT, 'shared'), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts'))
      .map((file) => join('shared', file));
    expect(files).toContain(ACCESS);
    const found = files
      .filter((file) => file !== ACCESS)
      .flatMap((file) =>
        bypasses(readFileSync(join(ROOT, file), 'utf8')).map((line) => `${file}:${line}`),
      );
    expect(found).toEqual([]);
    // The access module itself is where the calls are (the scan would find them there).
    expect(bypasses(readFileSync(join(ROOT, ACCESS), 'utf8')).length).toBeGreaterThan(5);
  });

  it('the scan sees each way around the wrapper, and lets the wrapper through', () => {
    const source = [
      "import { Bigtable } from '@google-cloud/bigtable';", // 1
      "const lib = await import('@google-cloud/bigtable');", // 2
      'const { table } = openTable(config);', // 3
      "await table.mutate({ key, method: 'delete' });", // 4
      'const [rows] = await this.table.getRows({ keys });', // 5
      'const handle = table.row(key);', // 6
      'await client.instance(name).table(name).createReadStream({});', // 7 (three calls)
      'await this.access.mutate({ key, method: "delete" });', // 8: the wrapper
      'await table.access', // 9
      '  .checkAndMutate(key, filter, { onMatch: [], onNoMatch: [] });', // 10: the wrapper
      'const kept = rows.filter(Boolean);', // 11: an array
      'await deadLetters.mutate(x);', // 12
    ].join('\n');
    expect(bypasses(source).map((line) => line.replace(/:.*/, ''))).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '7',
      '7',
      '12',
    ]);
  });
});
