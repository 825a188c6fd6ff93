/**
 * The deployed archive's compile cache (deploy/loader.ts, deploy/compile-cache.ts): the archive's
 * build step (`npm run gcp-build`, which installArtifact runs as the Node.js buildpack does) fills
 * it; an instance started from the archive reads the bundle's compiled code from it instead of
 * compiling the bundle, also when it runs as another user than the build did; and on a runtime
 * without a compile cache (Node.js 20) nothing is written and the instance starts as before.
 * Node reports each cache read with NODE_DEBUG_NATIVE=COMPILE_CACHE.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot } from '../../deploy/compile-cache.js';
import { installArtifact } from '../../scripts/build-deploy.js';
import { testEnv } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

const work = mkdtempSync(join(tmpdir(), 'lro-compile-cache-'));
const artifact = join(work, 'artifact');
const cacheDir = join(artifact, '.compile-cache');
/** Whether this Node.js has a compile cache (22.1 and later). */
const hasCompileCache =
  typeof (module as unknown as { enableCompileCache?: unknown }).enableCompileCache === 'function';
const uid = process.getuid?.() ?? -1;
const tag = `v${process.versions.node}-${process.arch}-`;
const running: RunningFunction[] = [];

beforeAll(async () => {
  await installArtifact(artifact);
}, 300_000);

afterAll(async () => {
  await Promise.allSettled(running.map((fn) => fn.stop()));
  rmSync(work, { recursive: true, force: true });
});

/** Starts `operations` from the archive with Node's compile-cache report on; its output. */
async function startReporting(temporary: string): Promise<string> {
  const fn = await startFunction(
    'operations',
    testEnv({ NODE_DEBUG_NATIVE: 'COMPILE_CACHE', TMPDIR: temporary, LRO_WARM_UP_TIMEOUT: '0s' }),
    undefined,
    { sourceDir: artifact },
  );
  running.push(fn);
  const answer = await fetch(`${fn.url}/console/`);
  expect(answer.status, fn.output()).toBe(200);
  await fn.stop();
  return fn.output();
}

const bundle = () => `ESM file://${artifact}/dist/functions/bundle.js was accepted`;

describe('the compile cache of the deployed archive', () => {
  it('is filled by the archive build step for this Node.js and user, readable by all', () => {
    if (!hasCompileCache) {
      expect(() => readdirSync(cacheDir)).toThrow(/ENOENT/);
      return;
    }
    const dirs = readdirSync(cacheDir);
    expect(dirs).toEqual([expect.stringMatching(new RegExp(`^${tag}[0-9a-f]+-${uid}$`))]);
    const files = readdirSync(join(cacheDir, dirs[0] as string));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(statSync(join(cacheDir, dirs[0] as string, file)).mode & 0o044).toBe(0o044);
    }
  });

  it("gives an instance the bundle's compiled code", async () => {
    const output = await startReporting(mkdtempSync(join(work, 'tmp-')));
    if (!hasCompileCache) {
      expect(output).not.toContain('[compile cache]');
      return;
    }
    expect(output).toContain(`reading cache from ${cacheDir}/`);
    expect(output).toContain(bundle());
  }, 180_000);

  it('gives an instance running as another user than the build a copy of its own', async () => {
    const temporary = mkdtempSync(join(work, 'tmp-'));
    if (!hasCompileCache) {
      // A cache this Node.js cannot use changes nothing: the instance starts and answers.
      const junk = join(cacheDir, `${tag}abc-424242`);
      mkdirSync(junk, { recursive: true });
      writeFileSync(join(junk, 'entry'), 'not code');
      expect(await startReporting(temporary)).not.toContain('[compile cache]');
      return;
    }
    // The build's directory as another user would have written it.
    const [built] = readdirSync(cacheDir) as [string];
    const other = built.replace(/-\d+$/, '-424242');
    renameSync(join(cacheDir, built), join(cacheDir, other));
    const output = await startReporting(temporary);
    expect(output).toContain(`reading cache from ${temporary}/lro-compile-cache/${built}/`);
    expect(output).toContain(bundle());
  }, 180_000);
});

describe('cacheRoot', () => {
  it('is the build root for its own user, a copy for another, nothing without a match', () => {
    const root = mkdtempSync(join(work, 'root-'));
    const temporary = mkdtempSync(join(work, 'tmp-'));
    expect(cacheRoot(root, temporary)).toBeUndefined();
    // Another Node.js's cache is not this one's.
    mkdirSync(join(root, 'v0.0.1-x64-abc-0'));
    expect(cacheRoot(root, temporary)).toBeUndefined();
    // Another user's: copied for this one.
    mkdirSync(join(root, `${tag}abc-424242`));
    writeFileSync(join(root, `${tag}abc-424242`, 'entry'), 'code');
    expect(cacheRoot(root, temporary)).toBe(join(temporary, 'lro-compile-cache'));
    expect(readdirSync(join(temporary, 'lro-compile-cache', `${tag}abc-${uid}`))).toEqual([
      'entry',
    ]);
    // This user's own: used where it is.
    mkdirSync(join(root, `${tag}abc-${uid}`));
    expect(cacheRoot(root, temporary)).toBe(root);
  });
});
