/**
 * bench.json goes through one schema (bench/results.ts): `npm run capacity` rejects a malformed
 * file with an error naming the file and the key, reads a well-formed one (an unmeasured figure,
 * null in the file, falls back to the default), and the benchmark refuses to write results that
 * do not match it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchResults, encodeBenchResults } from '../../bench/results.js';
import { main } from '../../scripts/capacity.js';
import { DEFAULT_CPU } from '../../scripts/capacity-model.js';

const dir = mkdtempSync(path.join(tmpdir(), 'lro-bench-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm run capacity -- --bench <file>` on the given text: exit code and output. */
function capacityOn(name: string, text: string): { code: number; out: string } {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, text);
  let out = '';
  const code = main(['--bench', file], (t) => {
    out += t;
  });
  return { code, out };
}

describe('npm run capacity reads bench.json through the results schema', () => {
  it('rejects a figure of the wrong type, naming the file and the key', () => {
    const { code, out } = capacityOn(
      'wrong-type',
      JSON.stringify({
        cpu: { apiMsPerGet: 'fast' },
        wake: { 'wake-up wait': { readsPerWait: 2 } },
      }),
    );
    expect(code).toBe(1);
    expect(out).toContain(path.join(dir, 'wrong-type.json'));
    expect(out).toContain('is not a result of npm run bench');
    expect(out).toMatch(/cpu\.apiMsPerGet/);
    expect(out).not.toContain('per million operations');
  });

  it('rejects a file that is not JSON, or not an object of the schema', () => {
    const notJson = capacityOn('not-json', '{"cpu": ');
    expect(notJson.code).toBe(1);
    expect(notJson.out).toContain('is not JSON');
    const list = capacityOn('list', '[1, 2]');
    expect(list.code).toBe(1);
    expect(list.out).toContain('is not a result of npm run bench');
    const wrongShape = capacityOn('wrong-shape', JSON.stringify({ wake: { 'wake-up wait': 2 } }));
    expect(wrongShape.code).toBe(1);
    expect(wrongShape.out).toMatch(/wake/);
  });

  it('reads the figures of a well-formed file, and falls back for one not measured (null)', () => {
    const measured = capacityOn(
      'measured',
      JSON.stringify({
        cpu: { apiMsPerGet: 1.25, apiMsPerWait: null },
        wake: { 'wake-up wait': { readsPerWait: 2.05, safetyNetPollsPerWait: 0.05 } },
        // Keys the schema does not know (an older or newer benchmark) are ignored.
        wakeOld: true,
      }),
    );
    expect(measured.code).toBe(0);
    expect(measured.out).toContain('API 1.25 ms/request');
    expect(measured.out).toContain('2.05 Bigtable reads/wait');
    expect(measured.out).toContain(`${DEFAULT_CPU.apiMsPerWait} ms/wait`);
  });
});

describe('npm run bench writes only results of the schema', () => {
  it('refuses results with a key missing or a figure of the wrong type', () => {
    expect(() => encodeBenchResults({} as BenchResults)).toThrow(/do not match bench\/results\.ts/);
    expect(() => encodeBenchResults({ date: 1 } as unknown as BenchResults)).toThrow(/date/);
  });
});
