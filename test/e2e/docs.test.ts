/**
 * The docs run as written. Every block of README.md and docs/*.md marked `doctest` (the commands
 * a reader is told to run) runs, in order, in one shell per document, against a fresh stack with
 * the documented names: each command must exit as the doc says and print what the doc shows
 * (test/support/doc-blocks.ts has the conventions). The local addresses the docs name
 * (http://127.0.0.1:8080, 127.0.0.1:8085) are replaced by the test stack's. Every TypeScript
 * snippet of the READMEs and docs is compiled against the built packages, as a consumer of
 * @cloud-lro/client and @cloud-lro/worker would compile it.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/stack.js';
import { freePort } from '../../shared/local/emulators.js';
import { teardownStack } from '../../shared/local/provision.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { compileFilter } from '../../shared/service/store/filter.js';
import { type Block, matchesShown, readBlocks, type Step, steps } from '../support/doc-blocks.js';
import { ROOT } from '../support/functions.js';

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const SNIPPET_DOCS = [...DOCS, 'packages/client/README.md', 'packages/worker/README.md'];
const blocksOf = (file: string) => readBlocks(ROOT, join(ROOT, file));

const work = mkdtempSync(join(tmpdir(), 'lro-docs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('TypeScript snippets', () => {
  it('compile against the built packages (NodeNext, strict)', () => {
    const snippets = SNIPPET_DOCS.flatMap(blocksOf).filter((b) => b.lang === 'ts');
    expect(snippets.length).toBeGreaterThanOrEqual(7);
    const project = join(work, 'snippets');
    mkdirSync(join(project, 'node_modules/@cloud-lro'), { recursive: true });
    symlinkSync(join(ROOT, 'packages/client'), join(project, 'node_modules/@cloud-lro/client'));
    symlinkSync(join(ROOT, 'packages/worker'), join(project, 'node_modules/@cloud-lro/worker'));
    symlinkSync(join(ROOT, 'node_modules/@types'), join(project, 'node_modules/@types'));
    writeFileSync(join(project, 'package.json'), '{"type":"module","private":true}\n');
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
      }),
    );
    // What the snippets leave to the reader: their own work and values from elsewhere.
    writeFileSync(
      join(project, 'reader.d.ts'),
      [
        'declare function enqueueExport(name: string): Promise<void>;',
        'declare function reindexShard(shard: string): Promise<void>;',
        'declare function writeRow(row: string[]): Promise<void>;',
        'declare function exportTable(table: string): Promise<void>;',
        'declare function idToken(): Promise<string>;',
        'declare const name: string;',
        'declare const parentName: string;',
        "declare const metadata: { '@type': string; [key: string]: unknown };",
        '',
      ].join('\n'),
    );
    const files = snippets.map((b) => {
      const file = `${b.file.replace(/[/.]/g, '_')}_L${b.line}.ts`;
      writeFileSync(join(project, file), `${b.code}\nexport {};\n`);
      return { file, block: b };
    });
    const tsc = resolve(ROOT, 'node_modules/typescript/bin/tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
    // Errors name the snippet's document and line.
    let report = `${run.stdout}${run.stderr}`;
    for (const { file, block } of files) {
      report = report.replace(
        new RegExp(`\\S*${file}`, 'g'),
        `${block.file}:${block.line} (snippet)`,
      );
    }
    expect(report.trim(), report).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('filter examples', () => {
  it('every line of a block marked `filters` is a filter the API accepts', () => {
    const examples = DOCS.flatMap(blocksOf)
      .filter((b) => b.tags.includes('filters'))
      .flatMap((b) => b.code.split('\n').filter((line) => line.trim() !== ''));
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const filter of examples) expect(() => compileFilter(filter), filter).not.toThrow();
  });
});

/** One bash per document; each step is sourced from a file with stdin from /dev/null. */
class Shell {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private n = 0;
  constructor(
    env: Record<string, string>,
    private readonly dir: string,
  ) {
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd: ROOT, env });
    this.child.stdout.on('data', (c: Buffer) => {
      this.out += c.toString();
    });
    this.child.stderr.on('data', (c: Buffer) => {
      this.err += c.toString();
    });
  }

  async run(
    command: string,
    timeoutMs: number,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const file = join(this.dir, `step-${++this.n}.sh`);
    writeFileSync(file, `${command}\n`);
    const marker = `__DOCTEST_${this.n}_EXIT_`;
    this.out = '';
    this.err = '';
    this.child.stdin.write(`. '${file}' </dev/null; printf '\\n${marker}%s__\\n' "$?"\n`);
    const deadline = Date.now() + timeoutMs;
    const pattern = new RegExp(`\\n?${marker}(\\d+)__\\n`);
    for (;;) {
      const m = pattern.exec(this.out);
      if (m) {
        return { code: Number(m[1]), stdout: this.out.slice(0, m.index), stderr: this.err };
      }
      if (this.child.exitCode !== null) {
        return {
          code: this.child.exitCode,
          stdout: this.out,
          stderr: `${this.err}\n(shell exited)`,
        };
      }
      if (Date.now() > deadline) {
        return {
          code: -1,
          stdout: this.out,
          stderr: `${this.err}\n(no answer within ${timeoutMs} ms)`,
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

describe('commands the docs tell a reader to run', () => {
  let stack: Stack;
  let shellEnv: Record<string, string>;
  let substitute: (text: string) => string;

  beforeAll(async () => {
    const emulators = inject('emulators');
    // The documented names (project lro-local, table operations, topics lro-events, ...) on the
    // run's emulators, emptied first: a fresh stack.
    const env = {
      BIGTABLE_EMULATOR_HOST: emulators.bigtable,
      PUBSUB_EMULATOR_HOST: emulators.pubsub,
    };
    await teardownStack(loadConfig(env));
    const apiPort = await freePort();
    let subscriberPort = await freePort();
    while (subscriberPort === apiPort) subscriberPort = await freePort();
    stack = await startStack({
      env: { ...env, METADATA_SERVER_DETECTION: 'none' },
      apiPort,
      subscriberPort,
    });
    const api = stack.api.url;
    substitute = (text) =>
      text
        .replaceAll('http://127.0.0.1:8080', api)
        .replaceAll('http://localhost:8080', api)
        .replaceAll('127.0.0.1:8085', emulators.pubsub)
        .replaceAll('127.0.0.1:8086', emulators.bigtable);
    const home = join(work, 'home');
    mkdirSync(home, { recursive: true });
    shellEnv = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      LRO_API_URL: api,
      BIGTABLE_EMULATOR_HOST: emulators.bigtable,
      PUBSUB_EMULATOR_HOST: emulators.pubsub,
      // gcloud keeps its configuration here, not in the developer's.
      CLOUDSDK_CONFIG: join(home, 'gcloud'),
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
    };
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    if (stack) await teardownStack(stack.config);
  });

  for (const doc of DOCS) {
    const marked = blocksOf(doc).filter((b) => b.tags.includes('doctest'));
    if (marked.length === 0) continue;
    it(`${doc}: ${marked.length} block(s), in order`, async () => {
      const dir = mkdtempSync(join(work, 'steps-'));
      const shell = new Shell(shellEnv, dir);
      try {
        for (const block of marked) {
          for (const step of steps(block)) await check(shell, block, step);
        }
      } finally {
        shell.close();
      }
    }, 600_000);
  }

  async function check(shell: Shell, block: Block, step: Step): Promise<void> {
    const command = substitute(step.command);
    const where = `${block.file}:${step.line}: ${step.command.split('\n')[0]}`;
    const ran = await shell.run(command, 90_000);
    const said = `${where}\n--- stdout\n${ran.stdout}\n--- stderr\n${ran.stderr}`;
    expect(ran.code, `exit code of ${said}`).toBe(step.expectedExit);
    if (step.expected !== undefined) {
      const expected = substitute(step.expected);
      expect(matchesShown(expected, ran.stdout), `${said}\n--- the doc shows\n${expected}`).toBe(
        true,
      );
    }
  }
});
