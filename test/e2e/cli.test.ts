/**
 * The `lro` CLI (dist/bin/lro.js) driven against a stack started by dist/scripts/start.js, with
 * a worker reporting through the worker SDK (events topic, push, subscriber): every command,
 * human and `--json` output, and the exit codes. The rendering helpers are tested directly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration } from '../../bin/commands/operations.js';
import { isLocalUrl } from '../../bin/connection.js';
import { formatList, formatTree } from '../../bin/format.js';
import { SseParser } from '../../bin/sse.js';
import { freePort } from '../../shared/local/emulators.js';
import { teardownStack } from '../../shared/local/provision.js';
import { createLogger } from '../../shared/sdk/log.js';
import type { Operation } from '../../shared/sdk/model.js';
import { percentOf, renderBar, renderProgressLine, stateOf } from '../../shared/sdk/progress.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { LRO, spawnLro } from '../support/cli.js';
import { testEnv } from '../support/env.js';
import { ROOT } from '../support/functions.js';
import { until } from '../support/until.js';

const START = resolve(ROOT, 'dist/scripts/start.js');
const PROGRESS = 'type.googleapis.com/test.Progress';

let url = '';
let config: Config;
let stack: ChildProcess | undefined;
let stackEnv: Record<string, string>;

const lro = (...args: string[]) => spawnLro(args, url).done;

async function worker(name: string): Promise<OperationReporter> {
  return OperationReporter.open({ operation: name, config, topics: { notifications: false } });
}

beforeAll(async () => {
  stackEnv = testEnv();
  config = loadConfig(stackEnv);
  const port = await freePort();
  let subscriberPort = await freePort();
  while (subscriberPort === port) subscriberPort = await freePort();
  url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [START, '--port', String(port), '--subscriber-port', String(subscriberPort)],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...stackEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  stack = child;
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const deadline = Date.now() + 110_000;
  while (!out.includes('Ctrl-C stops')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no stack:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  if (stack && stack.exitCode === null) {
    const exited = new Promise((r) => stack?.once('exit', r));
    stack.kill('SIGINT');
    await exited;
  }
  if (stackEnv) await teardownStack(loadConfig(stackEnv));
});

describe('lro against a running stack', () => {
  it('create, get and delete, in human and --json output', async () => {
    const created = await lro(
      'create',
      '--id',
      'cli-one',
      '--metadata',
      JSON.stringify({ '@type': PROGRESS, percent: 5, message: 'queued' }),
      '--json',
    );
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'operations/cli-one', done: false });

    const human = await lro('get', 'cli-one');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('operations/cli-one  RUNNING  5%  queued');
    expect(human.stdout).toContain('"percent":5');

    const json = await lro('get', 'operations/cli-one', '--json');
    expect(JSON.parse(json.stdout)).toEqual({
      name: 'operations/cli-one',
      done: false,
      metadata: { '@type': PROGRESS, percent: 5, message: 'queued' },
    });

    const taken = await lro('create', '--id', 'cli-one');
    expect(taken.code).toBe(4);
    expect(taken.stderr).toContain('ALREADY_EXISTS');

    const deleted = await lro('delete', 'cli-one', '--json');
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({});
    const gone = await lro('get', 'cli-one', '--json');
    expect(gone.code).toBe(4);
    expect(JSON.parse(gone.stdout)).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
    expect(gone.stderr).toMatch(/^lro: NOT_FOUND: /);
  });

  it('list pages with --page-size/--page-token, --all and --filter; children and tree', async () => {
    const parent = await lro('create', '--id', 'cli-parent', '--json');
    expect(parent.code).toBe(0);
    for (const id of ['cli-child-a', 'cli-child-b']) {
      expect((await lro('create', '--id', id, '--parent', 'cli-parent')).code).toBe(0);
    }
    expect((await lro('create', '--id', 'cli-grandchild', '--parent', 'cli-child-a')).code).toBe(0);

    const first = await lro('list', '--page-size', '2', '--json');
    expect(first.code).toBe(0);
    const page = JSON.parse(first.stdout) as { operations: Operation[]; nextPageToken: string };
    expect(page.operations).toHaveLength(2);
    expect(page.nextPageToken).not.toBe('');
    const second = await lro(
      'list',
      '--page-size',
      '2',
      '--page-token',
      page.nextPageToken,
      '--json',
    );
    expect(JSON.parse(second.stdout).operations.length).toBeGreaterThan(0);

    const all = await lro('list', '--all', '--page-size', '1', '--json');
    const names = (JSON.parse(all.stdout).operations as Operation[]).map((op) => op.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'operations/cli-parent',
        'operations/cli-child-a',
        'operations/cli-child-b',
        'operations/cli-grandchild',
      ]),
    );

    const humanPage = await lro('list', '--page-size', '1');
    expect(humanPage.stdout).toMatch(/RUNNING/);
    expect(humanPage.stdout).toMatch(/next page: --page-token \S+/);

    const doneOnly = await lro('list', '--filter', 'done = true', '--json');
    expect(doneOnly.code).toBe(0);
    expect((JSON.parse(doneOnly.stdout).operations as Operation[]).every((op) => op.done)).toBe(
      true,
    );

    const children = await lro('children', 'cli-parent', '--json');
    expect(children.code).toBe(0);
    expect(
      (JSON.parse(children.stdout).operations as Operation[]).map((op) => op.name).sort(),
    ).toEqual(['operations/cli-child-a', 'operations/cli-child-b']);
    const childrenHuman = await lro('children', 'cli-parent', '--all');
    expect(childrenHuman.stdout).toContain('operations/cli-child-b');

    const tree = await lro('tree', 'cli-parent');
    expect(tree.code).toBe(0);
    expect(tree.stdout).toContain('operations/cli-parent  RUNNING');
    expect(tree.stdout).toMatch(/├── operations\/cli-child-a {2}RUNNING/);
    expect(tree.stdout).toMatch(/│ {3}└── operations\/cli-grandchild/);
    expect(tree.stdout).toMatch(/└── operations\/cli-child-b/);
    const treeJson = await lro('tree', 'cli-parent', '--max-depth', '1', '--json');
    expect(JSON.parse(treeJson.stdout)).toMatchObject({
      operation: 'operations/cli-parent',
      childrenOperations: expect.arrayContaining([
        { operation: 'operations/cli-child-a', childrenOperations: [] },
      ]),
    });
  });

  it('wait draws progress and exits 0 when the worker succeeds, 1 when it fails', async () => {
    for (const id of ['cli-ok', 'cli-bad']) expect((await lro('create', '--id', id)).code).toBe(0);
    const ok = await worker('cli-ok');
    const bad = await worker('cli-bad');
    try {
      const waiting = spawnLro(['wait', 'cli-ok', '--timeout', '30s'], url);
      const waitingJson = spawnLro(['wait', 'cli-bad', '--timeout', '30s', '--json'], url);
      await ok.progress({ '@type': PROGRESS, percent: 50, message: 'halfway' });
      await bad.progress({ '@type': PROGRESS, progress: 0.25 });
      // The bar shows the progress before the end arrives.
      await until(() => waiting.output().stderr.includes('halfway'), 15_000, 'the 50% bar');
      await ok.succeed({ '@type': 'type.googleapis.com/test.Result', rows: 7 });
      await bad.fail({ code: 9, message: 'the bucket is gone' });

      const done = await waiting.done;
      expect(done.code).toBe(0);
      expect(done.stderr).toContain('waiting for operations/cli-ok');
      expect(done.stderr).toMatch(/\[#{12}-{12}\] {2}50% {2}RUNNING {4}halfway/);
      expect(done.stderr).toMatch(/\[#{24}\] 100% {2}SUCCEEDED/);
      expect(done.stdout).toContain('operations/cli-ok  SUCCEEDED');
      expect(done.stdout).toContain('"rows":7');

      const failed = await waitingJson.done;
      expect(failed.code).toBe(1);
      expect(JSON.parse(failed.stdout)).toMatchObject({
        name: 'operations/cli-bad',
        done: true,
        error: { code: 9, message: 'the bucket is gone' },
      });

      const human = await lro('wait', 'cli-bad');
      expect(human.code).toBe(1);
      expect(human.stdout).toContain('FAILED_PRECONDITION (9): the bucket is gone');
    } finally {
      await Promise.all([ok.close(), bad.close()]);
    }
  });

  it('wait and watch exit 3 with the latest state when the timeout passes', async () => {
    expect((await lro('create', '--id', 'cli-slow')).code).toBe(0);
    const waited = await lro('wait', 'cli-slow', '--timeout', '1s', '--json');
    expect(waited.code).toBe(3);
    expect(JSON.parse(waited.stdout)).toMatchObject({ name: 'operations/cli-slow', done: false });
    const watched = await lro('watch', 'cli-slow', '--timeout', '500ms');
    expect(watched.code).toBe(3);
    expect(watched.stdout).toContain('operations/cli-slow  RUNNING');
    expect(watched.stderr).toContain('not done after 500ms');
  });

  it('watch streams every change (--json: one Operation per line) until done', async () => {
    for (const id of ['cli-watch', 'cli-watch-human']) {
      expect((await lro('create', '--id', id)).code).toBe(0);
    }
    const json = spawnLro(['watch', 'cli-watch', '--json', '--timeout', '30s'], url);
    const human = spawnLro(['watch', 'cli-watch-human', '--timeout', '30s'], url);
    const reporters = [await worker('cli-watch'), await worker('cli-watch-human')];
    try {
      // Both watches are following once they print the first state.
      await until(
        () =>
          json.output().stdout.includes('"name":"operations/cli-watch"') &&
          human.output().stdout.includes('RUNNING'),
        15_000,
        'the first state of both watches',
      );
      for (const percent of [30, 60]) {
        for (const r of reporters) await r.progress({ '@type': PROGRESS, percent });
        await until(
          () =>
            json.output().stdout.includes(`"percent":${percent}`) &&
            human.output().stdout.includes(` ${percent}%`),
          15_000,
          `the ${percent}% state`,
        );
      }
      for (const r of reporters) await r.succeed();
      const streamed = await json.done;
      expect(streamed.code).toBe(0);
      const states = streamed.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Operation);
      expect(states[0]).toMatchObject({ name: 'operations/cli-watch', done: false });
      expect(states.map((s) => percentOf(s.metadata))).toEqual(expect.arrayContaining([30, 60]));
      expect(states.at(-1)).toMatchObject({ done: true });

      const shown = await human.done;
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain('watching operations/cli-watch-human');
      expect(shown.stdout).toMatch(/ 60% {2}RUNNING/);
      expect(shown.stdout).toContain('operations/cli-watch-human  SUCCEEDED');
    } finally {
      await Promise.all(reporters.map((r) => r.close()));
    }
  });

  it('cancel requests cancellation; the worker reports it and wait exits 1 with CANCELLED', async () => {
    expect((await lro('create', '--id', 'cli-cancel')).code).toBe(0);
    const reporter = await OperationReporter.open({
      operation: 'cli-cancel',
      config,
      log: createLogger({}, () => {}),
    });
    try {
      const cancelled = await lro('cancel', 'cli-cancel');
      expect(cancelled.code).toBe(0);
      expect(cancelled.stdout).toBe('cancellation of operations/cli-cancel requested\n');
      expect((await lro('cancel', 'cli-cancel', '--json')).stdout.trim()).toBe('{}');
      // Pending: get shows when it was requested; --json stays the Operation alone.
      const pending = await lro('get', 'cli-cancel');
      expect(pending.stdout).toMatch(/^ {2}cancel requested: \d{4}-\d{2}-\d{2}T[\d:.]+Z$/m);
      expect(pending.stdout).toContain('RUNNING');
      expect(JSON.parse((await lro('get', 'cli-cancel', '--json')).stdout)).toEqual({
        name: 'operations/cli-cancel',
        done: false,
      });
      await new Promise<void>((r) => {
        if (reporter.signal.aborted) r();
        else reporter.signal.addEventListener('abort', () => r());
      });
      await reporter.cancelled();
      const waited = await lro('wait', 'cli-cancel', '--timeout', '20s');
      expect(waited.code).toBe(1);
      expect(waited.stdout).toContain('CANCELLED');
      expect(waited.stderr).toContain('was cancelled');
    } finally {
      await reporter.close();
    }
  });

  it('usage errors exit 2, an unreachable API exits 4', async () => {
    for (const args of [
      [],
      ['frobnicate'],
      ['get'],
      ['get', 'Not_An_ID'],
      ['list', '--bogus'],
      ['get', 'a', 'b'],
      ['wait', 'a', '--timeout', 'soon'],
      ['list', '--all', '--page-token', 'x'],
      ['get', 'a', '--filter', 'done = true'],
      ['create', '--metadata', '{"percent":1}'],
    ]) {
      const result = await lro(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^lro: .+\nRun "lro --help" for usage\.\n$/);
    }
    const help = await lro('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');

    const port = await freePort();
    const child = spawn(process.execPath, [LRO, 'get', 'x', '--url', `http://127.0.0.1:${port}`]);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipe.
    const code = await new Promise((r) => child.once('close', r));
    expect(code).toBe(4);
    expect(stderr).toContain('the API cannot be reached');
  });
});

describe('rendering', () => {
  const op = (fields: Partial<Operation>): Operation => ({
    name: 'operations/x',
    done: false,
    ...fields,
  });

  it('reads percent, then progressPercent, then progress as a fraction', () => {
    expect(percentOf({ '@type': 't/x', percent: 42 })).toBe(42);
    expect(percentOf({ '@type': 't/x', progressPercent: 7 })).toBe(7);
    expect(percentOf({ '@type': 't/x', progress: 0.5 })).toBe(50);
    expect(percentOf({ '@type': 't/x', percent: 250 })).toBe(100);
    expect(percentOf({ '@type': 't/x', percent: '42' })).toBeUndefined();
    expect(percentOf(undefined)).toBeUndefined();
  });

  it('draws bars of one length whatever the percentage', () => {
    expect(renderBar(0, { width: 10 })).toBe('[----------]   0%');
    expect(renderBar(55, { width: 10 })).toBe('[######----]  55%');
    expect(renderBar(100, { width: 10 })).toBe('[##########] 100%');
    expect(renderBar(undefined, { width: 10 })).toBe('[          ]    ?');
    expect(
      renderProgressLine(op({ metadata: { '@type': 't/x', percent: 20, stage: 'copying' } }), {
        width: 10,
      }),
    ).toBe('[##--------]  20%  RUNNING    copying');
  });

  it('names the states, a cancelled operation included', () => {
    expect(stateOf(op({}))).toBe('RUNNING');
    expect(stateOf(op({ done: true }))).toBe('SUCCEEDED');
    expect(stateOf(op({ done: true, error: { code: 13, message: 'x' } }))).toBe('FAILED');
    expect(stateOf(op({ done: true, error: { code: 1, message: 'x' } }))).toBe('CANCELLED');
  });

  it('formats lists and trees', () => {
    expect(formatList([], 'tok')).toBe('(no operations)\nnext page: --page-token tok');
    const tree = {
      operation: 'operations/p',
      childrenOperations: [
        {
          operation: 'operations/a',
          childrenOperations: [{ operation: 'operations/a1', childrenOperations: [] }],
        },
        { operation: 'operations/b', childrenOperations: [] },
      ],
    };
    expect(formatTree(tree)).toBe(
      ['operations/p', '├── operations/a', '│   └── operations/a1', '└── operations/b'].join('\n'),
    );
  });

  it('parses server-sent events split anywhere, comments skipped', () => {
    const parser = new SseParser();
    expect(parser.push(': keep-alive\n\nevent: operation\nda')).toEqual([]);
    expect(parser.push('ta: {"a":1}\n\nevent: timeout\r\ndata: {}\r\n\r\n')).toEqual([
      { event: 'operation', data: '{"a":1}' },
      { event: 'timeout', data: '{}' },
    ]);
  });

  it('parses durations and tells local URLs', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1.5')).toBe(1_500);
    expect(() => parseDuration('soon')).toThrow();
    expect(isLocalUrl('http://127.0.0.1:8080')).toBe(true);
    expect(isLocalUrl('http://localhost:8080')).toBe(true);
    expect(isLocalUrl('http://[::1]:8080')).toBe(true);
    expect(isLocalUrl('https://europe-west1-p.cloudfunctions.net/operations')).toBe(false);
  });
});
