/**
 * Every npm script answers `--help` (`npm run <script> -- --help`): the script that package.json
 * runs prints a usage and exits 0 without starting anything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/functions.js';
import { runScript } from '../support/processes.js';

const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>;
const entries = Object.entries(scripts).flatMap(([name, command]) => {
  const script = /\bnode (dist\/\S+\.js)/.exec(command)?.[1];
  return script ? [[name, script] as const] : [];
});

describe('npm run <script> -- --help', () => {
  it('covers the scripts that run a built file', () => {
    expect(entries.map(([name]) => name)).toEqual(
      expect.arrayContaining(['start', 'demo', 'bench', 'capacity', 'schema', 'openapi']),
    );
  });

  for (const [name, script] of entries) {
    it(`${name} (${script})`, async () => {
      const run = await runScript(script, ['--help'], {}, { killAfterMs: 30_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^Usage: /);
      expect(run.stderr).toBe('');
    });
  }
});
