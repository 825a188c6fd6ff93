/**
 * The npm packages as another repository gets them: `npm pack` of packages/client and
 * packages/worker (built by `npm run build`), each tarball installed into a fresh project outside
 * this repository (dependencies from the npm registry, through the npm cache), a TypeScript
 * consumer compiled against it with moduleResolution NodeNext and again with Bundler by this
 * repository's tsc, then run against the local stack: the worker consumer reports progress and
 * success, the client consumer waits and sees both. Prints the installed size of each
 * consumer's node_modules.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { Code, LroError } from '../../shared/sdk/errors.js';
import type * as model from '../../shared/sdk/model.js';
import type * as plain from '../../shared/sdk/operation.js';
import { statusOf } from '../../shared/sdk/reporter.js';
import { type EventStack, startEventStack } from '../support/event-stack.js';
import { ROOT, type RunningFunction, startFunction } from '../support/functions.js';

const run = promisify(execFile);
const TSC = resolve(ROOT, 'node_modules/.bin/tsc');
const rootPackage = readJson(resolve(ROOT, 'package.json'));
const typesNodeVersion = readJson(resolve(ROOT, 'node_modules/@types/node/package.json'))
  .version as string;
const MB = 1024 * 1024;

function readJson(path: string): Record<string, any> {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The environment of npm and tsc in a consumer: none of the npm variables of this run. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_') && key !== 'INIT_CWD' && key !== 'NODE_OPTIONS') {
      env[key] = value;
    }
  }
  return { ...env, ...extra };
}

async function npm(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('npm', args, {
    cwd,
    env: cleanEnv(),
    maxBuffer: 64 * MB,
  });
  return stdout;
}

function bytesOf(dir: string): Promise<number> {
  return run('du', ['-sk', dir]).then(({ stdout }) => Number(stdout.split(/\s/)[0]) * 1024);
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

interface Packed {
  name: 'client' | 'worker';
  tarball: string;
  files: string[];
}

async function pack(name: 'client' | 'worker', into: string): Promise<Packed> {
  const dir = resolve(ROOT, 'packages', name);
  const entry = join(dir, 'dist', `${name}.js`);
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first`);
  const [result] = JSON.parse(
    await npm(ROOT, ['pack', dir, '--json', '--pack-destination', into]),
  ) as { filename: string; files: { path: string }[] }[];
  if (!result) throw new Error('npm pack printed nothing');
  return { name, tarball: join(into, result.filename), files: result.files.map((f) => f.path) };
}

/** A fresh npm project in `dir` with the tarball installed; returns node_modules' size. */
async function install(dir: string, tarball: string): Promise<number> {
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
  );
  const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'];
  await npm(dir, ['install', ...flags, tarball]);
  const size = await bytesOf(join(dir, 'node_modules'));
  // Only to compile the consumer; not part of the package's tree measured above.
  await npm(dir, ['install', ...flags, '--save-dev', `@types/node@${typesNodeVersion}`]);
  return size;
}

const compilerOptions = {
  target: 'ES2022',
  lib: ['ES2023'],
  types: ['node'],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
};

/**
 * Compiles main.ts with NodeNext (into out-nodenext/) and with Bundler (into out-bundler/).
 * `skipLibCheck` stays off where the dependencies allow it (@google-cloud/pubsub's own
 * declarations do not pass it; the worker's are checked by the import scan below instead).
 */
async function compile(dir: string, skipLibCheck: boolean): Promise<void> {
  const variants = {
    nodenext: { module: 'NodeNext', moduleResolution: 'NodeNext' },
    bundler: { module: 'ESNext', moduleResolution: 'Bundler' },
  };
  for (const [name, resolution] of Object.entries(variants)) {
    const config = `tsconfig.${name}.json`;
    writeFileSync(
      join(dir, config),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, ...resolution, skipLibCheck, outDir: `out-${name}` },
        files: ['main.ts'],
      }),
    );
    try {
      await run(TSC, ['-p', config], { cwd: dir, env: cleanEnv() });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      throw new Error(`tsc (${name}) failed in ${dir}:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  }
}

/**
 * What a packed declaration file imports that the package does not provide: a relative module
 * that is not in the tarball, or a package that is neither a dependency nor built into Node.
 */
function unresolvedImports(packed: Packed, dependencies: string[]): string[] {
  const missing: string[] = [];
  const files = new Set(packed.files);
  for (const file of packed.files.filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(join(ROOT, 'packages', packed.name, file), 'utf8');
    for (const [, specifier = ''] of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      if (specifier.startsWith('.')) {
        const target = join(file, '..', specifier.replace(/\.js$/, '.d.ts'));
        if (!files.has(target)) missing.push(`${file}: ${specifier}`);
      } else if (!specifier.startsWith('node:')) {
        const name = specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
        if (!dependencies.includes(name)) missing.push(`${file}: ${specifier}`);
      }
    }
  }
  return missing;
}

/** Top-level package names under node_modules (scoped ones as @scope/name). */
function installedPackages(dir: string): string[] {
  const root = join(dir, 'node_modules');
  return readdirSync(root).flatMap((entry) => {
    if (entry.startsWith('.')) return [];
    if (!entry.startsWith('@')) return [entry];
    return readdirSync(join(root, entry)).map((name) => `${entry}/${name}`);
  });
}

/** A running consumer whose stdout lines (JSON) are collected and can be awaited. */
interface Consumer {
  child: ChildProcess;
  lines: Record<string, any>[];
  next(test: (line: Record<string, any>) => boolean, what: string): Promise<Record<string, any>>;
  exited: Promise<number | null>;
  stderr(): string;
}

function startConsumer(dir: string, args: string[], env: Record<string, string>): Consumer {
  const child = spawn(process.execPath, ['out-nodenext/main.js', ...args], {
    cwd: dir,
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, any>[] = [];
  const waiting: { test: (l: Record<string, any>) => boolean; resolve: (l: any) => void }[] = [];
  let errors = '';
  child.stderr?.on('data', (chunk) => {
    errors += String(chunk);
  });
  // 'close', not 'exit': at 'exit' its last lines may still be unread in the pipe, and a wait
  // for one of them would fail as if it had exited without printing it.
  const exited = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    let line: Record<string, any>;
    try {
      line = JSON.parse(text);
    } catch {
      return; // a log line of a dependency
    }
    lines.push(line);
    for (const w of [...waiting]) {
      if (w.test(line)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    child,
    lines,
    exited,
    stderr: () => errors,
    next: (test, what) => {
      const found = lines.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolveLine, reject) => {
        const fail = (why: string) =>
          reject(new Error(`${why} before ${what}; output: ${JSON.stringify(lines)}\n${errors}`));
        const timer = setTimeout(() => fail('no line in 90 s'), 90_000);
        waiting.push({
          test,
          resolve: (line) => {
            clearTimeout(timer);
            resolveLine(line);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          fail(`consumer exited (${code})`);
        });
      });
    },
  };
}

const CLIENT_CONSUMER = `
import {
  Code,
  LroError,
  type Operation,
  OperationsClient,
  percentOf,
  waitForOperation,
} from '@cloud-lro/client';

const say = (line: object) => console.log(JSON.stringify(line));
const [baseUrl = ''] = process.argv.slice(2);
const client = new OperationsClient({ baseUrl });

try {
  await client.get('operations/never-created');
} catch (err) {
  say({ notFound: err instanceof LroError && err.code === Code.NOT_FOUND });
}

const created: Operation = await client.create({
  metadata: { '@type': 'type.googleapis.com/consumer.Progress', percent: 0 },
});
say({ created: created.name });
const done = await waitForOperation(client, created.name, {
  timeout: 120_000,
  pollTimeout: 500,
  onMetadata: (metadata) => say({ progress: percentOf(metadata) ?? null }),
});
say({ done });
`;

const WORKER_CONSUMER = `
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { OperationReporter, type ReporterConfig, WorkerEventSchema } from '@cloud-lro/worker';

const say = (line: object) => console.log(JSON.stringify(line));
const [operation = ''] = process.argv.slice(2);
const config: ReporterConfig = {
  projectId: process.env.GOOGLE_CLOUD_PROJECT ?? '',
  pubsubEmulatorHost: process.env.PUBSUB_EMULATOR_HOST,
  topics: {
    events: process.env.LRO_EVENTS_TOPIC ?? '',
    notifications: process.env.LRO_NOTIFICATIONS_TOPIC ?? '',
  },
};
const schemaPath = createRequire(import.meta.url).resolve('@cloud-lro/worker/event.schema.json');
say({ schema: typeof WorkerEventSchema.safeParse === 'function' && schemaPath.endsWith('.json') });

const reporter = await OperationReporter.open({ config, operation });
try {
  await reporter.progress({ '@type': 'type.googleapis.com/consumer.Progress', percent: 50 });
  say({ reported: 50 });
  // The test says when the caller saw the progress.
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'finish') break;
  }
  process.stdin.destroy();
  await reporter.succeed({ '@type': 'type.googleapis.com/consumer.Result', rows: 42 });
  say({ succeeded: true });
} finally {
  await reporter.close();
}
`;

describe('one package\u2019s errors in the other', () => {
  it('a failure reported with the client package\u2019s LroError keeps its code', async () => {
    const entry = resolve(ROOT, 'packages/client/dist/client.js');
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first`);
    const client = (await import(entry)) as typeof import('../../shared/sdk/client.js');
    expect(client.LroError).not.toBe(LroError); // another copy of the module
    const failure = new client.LroError(client.Code.NOT_FOUND, 'no such table');
    expect(statusOf(failure)).toEqual({ code: Code.NOT_FOUND, message: 'no such table' });
    expect(statusOf(new Error('boom'))).toEqual({ code: Code.INTERNAL, message: 'boom' });
  });
});

describe('the wire types the client package declares', () => {
  it('are the zod schemas\u2019 inferred types', () => {
    expectTypeOf<plain.Any>().toEqualTypeOf<model.Any>();
    expectTypeOf<plain.Status>().toEqualTypeOf<model.Status>();
    expectTypeOf<plain.Operation>().toEqualTypeOf<model.Operation>();
  });

  it('are checked by the typecheck npm test runs before vitest (expectTypeOf checks nothing at run time)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const steps = (pkg.scripts.test ?? '').split('&&').map((step) => step.trim());
    const typecheck = steps.indexOf('npm run typecheck');
    expect(typecheck, pkg.scripts.test).toBeGreaterThanOrEqual(0);
    expect(typecheck).toBeLessThan(steps.findIndex((step) => step.startsWith('vitest run')));
    expect(pkg.scripts.typecheck).toMatch(/^tsc -p tsconfig\.json(\s|$)/);
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as {
      include: string[];
    };
    expect(tsconfig.include).toContain('test');
  });
});

describe('@cloud-lro/client and @cloud-lro/worker from their tarballs', () => {
  let work: string;
  let clientDir: string;
  let workerDir: string;
  let packed: { client: Packed; worker: Packed };
  let sizes: { client: number; worker: number };
  let stack: EventStack | undefined;
  let api: RunningFunction | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lro-packages-'));
    clientDir = mkdtempSync(join(work, 'client-'));
    workerDir = mkdtempSync(join(work, 'worker-'));
    packed = { client: await pack('client', work), worker: await pack('worker', work) };
    const [client, worker] = await Promise.all([
      install(clientDir, packed.client.tarball),
      install(workerDir, packed.worker.tarball),
    ]);
    sizes = { client, worker };
    writeFileSync(join(clientDir, 'main.ts'), CLIENT_CONSUMER);
    writeFileSync(join(workerDir, 'main.ts'), WORKER_CONSUMER);
    await Promise.all([compile(clientDir, false), compile(workerDir, true)]);
  }, 600_000);

  afterAll(async () => {
    await api?.stop();
    await stack?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('pack only their own modules, with declarations and a README', () => {
    const client = packed.client.files;
    expect(client).toEqual(
      expect.arrayContaining(['package.json', 'README.md', 'dist/client.js', 'dist/client.d.ts']),
    );
    for (const internal of ['model', 'messaging', 'reporter', 'store', 'config', 'api']) {
      expect(client, internal).not.toContain(`dist/${internal}.js`);
    }
    const worker = packed.worker.files;
    expect(worker).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/worker.js',
        'dist/worker.d.ts',
        'dist/reporter.js',
        'dist/event.schema.json',
      ]),
    );
    for (const internal of ['bigtable-store', 'store', 'config', 'api', 'subscriber', 'waiter']) {
      expect(worker, internal).not.toContain(`dist/${internal}.js`);
    }
    expect(unresolvedImports(packed.client, [])).toEqual([]);
    expect(unresolvedImports(packed.worker, ['@google-cloud/pubsub', 'zod'])).toEqual([]);
  });

  it('depend on nothing Google (client) and on Pub/Sub and zod only (worker)', () => {
    const client = readJson(resolve(ROOT, 'packages/client/package.json'));
    const worker = readJson(resolve(ROOT, 'packages/worker/package.json'));
    expect(client.dependencies ?? {}).toEqual({});
    expect(worker.dependencies).toEqual({
      '@google-cloud/pubsub': rootPackage.dependencies['@google-cloud/pubsub'],
      zod: rootPackage.dependencies.zod,
    });
    for (const manifest of [client, worker]) {
      expect(manifest.version).toBe(rootPackage.version);
      expect(manifest.engines.node).toBe('>=20');
    }
    const clientTree = installedPackages(clientDir);
    expect(clientTree.filter((p) => p !== '@types/node' && p !== 'undici-types')).toEqual([
      '@cloud-lro/client',
    ]);
    const workerTree = installedPackages(workerDir);
    expect(workerTree).toEqual(expect.arrayContaining(['@google-cloud/pubsub', 'zod']));
    for (const forbidden of [
      '@google-cloud/bigtable',
      '@google-cloud/functions-framework',
      'googleapis',
    ]) {
      expect(workerTree, forbidden).not.toContain(forbidden);
    }
  });

  it('install small: the client under 5 MB, the worker little beyond Pub/Sub and zod', async () => {
    const workerOwn = await bytesOf(join(workerDir, 'node_modules/@cloud-lro/worker'));
    const zod = await bytesOf(join(workerDir, 'node_modules/zod'));
    const pubsubTree = sizes.worker - workerOwn - zod;
    console.log(
      [
        'installed size (du of a fresh consumer\u2019s node_modules):',
        `  @cloud-lro/client  ${mb(sizes.client)}`,
        `  @cloud-lro/worker  ${mb(sizes.worker)}  (the package ${mb(workerOwn)}, zod ${mb(zod)}, @google-cloud/pubsub and its dependencies ${mb(pubsubTree)})`,
      ].join('\n'),
    );
    expect(sizes.client).toBeLessThan(5 * MB);
    expect(workerOwn).toBeLessThan(1 * MB);
  });

  it('run against the local stack: the worker reports, the client waits and sees progress and success', async () => {
    stack = await startEventStack();
    api = await startFunction('operations', stack.env);
    const env = {
      GOOGLE_CLOUD_PROJECT: stack.config.projectId,
      PUBSUB_EMULATOR_HOST: stack.env.PUBSUB_EMULATOR_HOST ?? '',
      LRO_EVENTS_TOPIC: stack.config.topics.events,
      LRO_NOTIFICATIONS_TOPIC: stack.config.topics.notifications,
    };
    const client = startConsumer(clientDir, [api.url], env);
    let worker: Consumer | undefined;
    try {
      expect(await client.next((l) => 'notFound' in l, 'the NOT_FOUND check')).toEqual({
        notFound: true,
      });
      const { created } = await client.next((l) => 'created' in l, 'the creation');
      worker = startConsumer(workerDir, [created], env);
      expect(await worker.next((l) => 'schema' in l, 'the schema check')).toEqual({
        schema: true,
      });
      await worker.next((l) => l.reported === 50, 'the progress report');
      await client.next((l) => l.progress === 50, 'the caller seeing 50%');
      worker.child.stdin?.write('finish\n');
      const { done } = await client.next((l) => 'done' in l, 'the done operation');
      expect(done).toEqual({
        name: created,
        done: true,
        metadata: { '@type': 'type.googleapis.com/consumer.Progress', percent: 50 },
        response: { '@type': 'type.googleapis.com/consumer.Result', rows: 42 },
      });
      expect(await worker.exited, worker.stderr()).toBe(0);
      expect(await client.exited, client.stderr()).toBe(0);
    } finally {
      client.child.kill();
      worker?.child.kill();
    }
  }, 240_000);
});
