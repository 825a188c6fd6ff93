#!/usr/bin/env node
/**
 * `npm run build` (and the build that `npm start`, `npm run demo`, `npm test` and the benchmarks
 * run first): compiles the service (dist/), the console (dist/console-app/: its scripts, with its
 * page, style sheet and icon copied from console/) and both packages (packages/{client,worker}/dist/)
 * and the deployed archive's content (dist/deploy/), and does nothing when no source changed since
 * the last build.
 *
 * "Changed" is a fingerprint of the path, size and modification time of every input (the source
 * folders, the tsconfig files, package.json and the lock file, the event schema) and of the Node.js
 * version, kept in dist/.build-fingerprint. The service and console compiles are incremental
 * (tsBuildInfoFile under dist/.tsbuildinfo/); the packages are compiled afresh into emptied
 * folders, so that a module removed from shared/sdk leaves nothing behind in a tarball.
 *
 *   node scripts/build.mjs [--force]
 *
 * Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const USAGE = `Usage: npm run build [-- --force]
  Compiles the service, the console and the two packages when a source changed since the last
  build (dist/.build-fingerprint); --force compiles anyway.
`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const unknown = args.find((a) => a !== '--force');
if (unknown !== undefined) {
  process.stderr.write(`unknown argument ${JSON.stringify(unknown)}\n${USAGE}`);
  process.exit(2);
}
const force = args.includes('--force');

const SOURCE_DIRS = [
  'functions',
  'shared',
  'scripts',
  'bin',
  'bench',
  'console',
  'schema',
  'deploy',
];
const SOURCE_FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'packages/client/package.json',
  'packages/client/tsconfig.json',
  'packages/worker/package.json',
  'packages/worker/tsconfig.json',
  'deploy/package.json',
  'deploy/package-lock.json',
];
const OUTPUTS = [
  'dist/functions/index.js',
  'dist/scripts/start.js',
  'dist/bin/lro.js',
  'dist/console-app/console/main.js',
  'dist/console-app/index.html',
  'packages/client/dist/client.js',
  'packages/worker/dist/worker.js',
  'packages/worker/dist/event.schema.json',
  'dist/deploy/dist/functions/index.js',
  'dist/deploy/dist/functions/bundle.js',
];
/** The console's static files (console/), copied as they are into dist/console-app/. */
const CONSOLE_ASSETS = ['index.html', 'style.css', 'favicon.svg'];
const FINGERPRINT = join(ROOT, 'dist/.build-fingerprint');

function walk(dir, into) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, into);
    else into.push(path);
  }
  return into;
}

function fingerprint() {
  const files = SOURCE_DIRS.flatMap((dir) =>
    existsSync(join(ROOT, dir)) ? walk(join(ROOT, dir), []) : [],
  );
  for (const file of SOURCE_FILES) if (existsSync(join(ROOT, file))) files.push(join(ROOT, file));
  const hash = createHash('sha256').update(`${process.version}\n`);
  for (const file of files.sort()) {
    const { size, mtimeMs } = statSync(file);
    hash.update(`${relative(ROOT, file)} ${size} ${mtimeMs}\n`);
  }
  return hash.digest('hex');
}

function run(what, args) {
  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`build: ${what} failed\n`);
    process.exit(result.status ?? 1);
  }
}

const before = fingerprint();
const current =
  !force &&
  OUTPUTS.every((file) => existsSync(join(ROOT, file))) &&
  existsSync(FINGERPRINT) &&
  readFileSync(FINGERPRINT, 'utf8').trim() === before;
if (current) {
  process.stdout.write('build: up to date (no source changed since the last build)\n');
  process.exit(0);
}

const started = Date.now();
const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
rmSync(FINGERPRINT, { force: true });
run('the service', [tsc, '-p', 'tsconfig.build.json']);
run('the console', [tsc, '-p', 'console/tsconfig.json']);
// The console's page, style sheet and icon, served from beside its compiled scripts.
for (const file of CONSOLE_ASSETS) {
  copyFileSync(join(ROOT, 'console', file), join(ROOT, 'dist/console-app', file));
}
for (const name of ['client', 'worker']) {
  rmSync(join(ROOT, 'packages', name, 'dist'), { recursive: true, force: true });
  run(`@cloud-lro/${name}`, [tsc, '-p', `packages/${name}`]);
}
copyFileSync(
  join(ROOT, 'schema/event.schema.json'),
  join(ROOT, 'packages/worker/dist/event.schema.json'),
);
// The deployed archive's content (dist/deploy/): one bundle of the functions (build-deploy.ts).
run('the deploy artifact', [join(ROOT, 'dist/scripts/build-deploy.js')]);
mkdirSync(join(ROOT, 'dist'), { recursive: true });
// The inputs as they were when the compile started: a file saved meanwhile builds again next time.
writeFileSync(FINGERPRINT, `${before}\n`);
process.stdout.write(`build: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
