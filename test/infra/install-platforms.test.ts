/**
 * `npm install` from the lock file works on the machines developers use: macOS (arm64, x64) and
 * Linux (arm64, x64), on each Node.js major the README names. npm's own CLI resolves the lock file
 * (`install --dry-run`, offline, with an empty cache) while it believes it runs on that platform;
 * a package that cannot be installed there is an EBADPLATFORM error, one whose engines exclude
 * that Node.js an EBADENGINE warning. Both fail the test.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/functions.js';

const WRAPPER = resolve(ROOT, 'test/support/npm-as-platform.cjs');

/** npm's CLI script: the one running this test, else the one beside this Node, else npm's own answer. */
function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && basename(fromEnv) === 'npm-cli.js' && existsSync(fromEnv)) return fromEnv;
  const besideNode = resolve(dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
  if (existsSync(besideNode)) return besideNode;
  const root = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  return join(root, 'npm/bin/npm-cli.js');
}

/** The Node.js majors the README names ("Node.js 24 ... or 20"), each at the oldest minor it admits. */
const NODE_VERSIONS = ['v20.19.0', 'v24.0.0'];
const PLATFORMS = [
  ['darwin', 'arm64'],
  ['darwin', 'x64'],
  ['linux', 'arm64'],
  ['linux', 'x64'],
] as const;

const work = mkdtempSync(join(tmpdir(), 'lro-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function dryRunInstall(
  platform: string,
  arch: string,
  nodeVersion: string,
): Promise<{ code: number | null; output: string }> {
  const project = mkdtempSync(join(work, `${platform}-${arch}-`));
  copyFileSync(join(ROOT, 'package.json'), join(project, 'package.json'));
  copyFileSync(join(ROOT, 'package-lock.json'), join(project, 'package-lock.json'));
  const args = [
    WRAPPER,
    npmCli(),
    platform,
    arch,
    nodeVersion,
    'install',
    '--dry-run',
    '--offline',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    '--cache',
    join(project, '.npm-cache'),
  ];
  const child = spawn(process.execPath, args, {
    cwd: project,
    env: { PATH: process.env.PATH ?? '', HOME: project },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  return new Promise((done) => child.once('exit', (code) => done({ code, output })));
}

describe('npm install on developers’ platforms', () => {
  it('names the Node.js majors the README names', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const version of NODE_VERSIONS) {
      expect(readme).toContain(`Node.js ${version.slice(1).split('.')[0]}`);
    }
  });

  for (const [platform, arch] of PLATFORMS) {
    for (const nodeVersion of NODE_VERSIONS) {
      it(`resolves the lock file on ${platform}-${arch} with Node.js ${nodeVersion}`, async () => {
        const { code, output } = await dryRunInstall(platform, arch, nodeVersion);
        expect(output).not.toMatch(/EBADPLATFORM|notsup/);
        expect(output).not.toMatch(/EBADENGINE/);
        expect(code, output).toBe(0);
        // The dry run did resolve the tree (not an early exit that checked nothing).
        expect(output).toMatch(/added \d+ packages/);
      });
    }
  }
});
