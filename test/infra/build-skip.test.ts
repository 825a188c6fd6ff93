/**
 * `npm run build` (scripts/build.mjs) does nothing when no source changed since the last build,
 * so that `npm start`, `npm run demo` and the benchmarks start at once on a built checkout. (After
 * `npm run build`, the first run here is already up to date; on an unbuilt checkout it builds.)
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/functions.js';

const OUTPUTS = [
  'dist/functions/index.js',
  'dist/scripts/start.js',
  'packages/worker/dist/worker.js',
];
const build = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
const mtimes = () => OUTPUTS.map((file) => statSync(join(ROOT, file)).mtimeMs);

describe('npm run build', () => {
  it('is up to date, touching nothing, when no source changed since the last build', () => {
    expect(build().status).toBe(0);
    const before = mtimes();
    const again = build();
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('build: up to date');
    expect(mtimes()).toEqual(before);
  }, 300_000);

  it('answers --help and refuses other arguments', () => {
    const help = build('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run build/);
    expect(build('--watch').status).toBe(2);
  });
});
