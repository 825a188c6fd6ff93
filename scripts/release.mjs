#!/usr/bin/env node
/**
 * `npm run release -- <version>`: one step before publishing @cloud-lro/client and
 * @cloud-lro/worker. Sets the version of the repository and of both packages together (they are
 * built from the same sources), builds afresh, packs both tarballs into packages/tarballs/ and
 * runs `npm publish --dry-run` for both, which lists exactly what would be published (files,
 * types, size). It publishes nothing; the last lines are the commands that do.
 *
 * Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['client', 'worker'];
const USAGE = `Usage: npm run release -- <version | patch | minor | major>
  Sets the version of package.json and of packages/client and packages/worker, builds afresh,
  packs both packages into packages/tarballs/ and runs npm publish --dry-run for both. Publishes
  nothing: it prints the commands that do (npm login and the @cloud-lro scope needed).
`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (args.length !== 1) {
  process.stderr.write(`release: one version expected\n${USAGE}`);
  process.exit(2);
}

const readJson = (path) => JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
const writeJson = (path, value) =>
  writeFileSync(join(ROOT, path), `${JSON.stringify(value, null, 2)}\n`);

const current = readJson('package.json').version;
const version = nextVersion(current, args[0]);
if (!version) {
  process.stderr.write(
    `release: ${JSON.stringify(args[0])} is not a version (1.2.3, 1.2.3-rc.1, patch, minor, major)\n`,
  );
  process.exit(2);
}

function nextVersion(from, wanted) {
  if (/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(wanted)) return wanted;
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(from);
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (wanted === 'major') return `${major + 1}.0.0`;
  if (wanted === 'minor') return `${major}.${minor + 1}.0`;
  if (wanted === 'patch') return `${major}.${minor}.${patch + 1}`;
  return undefined;
}

function npm(args) {
  process.stdout.write(`\n$ npm ${args.join(' ')}\n`);
  const cli = process.env.npm_execpath;
  const result =
    cli && /npm-cli\.js$/.test(cli)
      ? spawnSync(process.execPath, [cli, ...args], { cwd: ROOT, stdio: 'inherit' })
      : spawnSync('npm', args, {
          cwd: ROOT,
          stdio: 'inherit',
          shell: process.platform === 'win32',
        });
  if (result.status !== 0) {
    process.stderr.write(`release: npm ${args[0]} failed\n`);
    process.exit(result.status ?? 1);
  }
}

// The repository's version (package.json and the lock file), then the packages'.
npm(['version', version, '--no-git-tag-version', '--allow-same-version']);
for (const name of PACKAGES) {
  const path = `packages/${name}/package.json`;
  const pkg = readJson(path);
  pkg.version = version;
  writeJson(path, pkg);
}
const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--force'], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);
mkdirSync(join(ROOT, 'packages/tarballs'), { recursive: true });
npm([
  'pack',
  ...PACKAGES.map((name) => `./packages/${name}`),
  '--pack-destination',
  'packages/tarballs',
]);
for (const name of PACKAGES)
  npm(['publish', '--dry-run', '--access', 'public', `./packages/${name}`]);

process.stdout.write(
  [
    '',
    `release: ${current} -> ${version}; tarballs in packages/tarballs/. Nothing was published.`,
    'Commit the version change, then publish both (from CI, add --provenance):',
    ...PACKAGES.map((name) => `  npm publish --access public ./packages/${name}`),
    '',
  ].join('\n'),
);
