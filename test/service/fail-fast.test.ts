/**
 * Fail fast, in one line: `npm start`, `npm run demo`, the `lro` CLI and the worker SDK, pointed
 * at an address where nothing answers (a dead port from freePort(), or a black hole: a socket
 * that accepts connections and never replies), exit or reject within seconds with one line that
 * names the variable or flag to set. The time bounds are generous: they catch hangs (the client
 * libraries retry for a minute or more), not slowness.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../shared/local/emulators.js';
import { Code, LroError } from '../../shared/sdk/errors.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { testConfig, uniqueSuffix } from '../support/env.js';
import { type OperationsStack, startOperationsStack } from '../support/operations-stack.js';
import { runScript, type ScriptRun } from '../support/processes.js';

/** Far above the few seconds these take, far below the minutes of a hang. */
const HANG_MS = 20_000;

/** A hang must fail the test, not leave a process behind. */
const runNode = (script: string, args: string[], env: Record<string, string>) =>
  runScript(script, args, env, { killAfterMs: 3 * HANG_MS });

/** The one line a run printed on stderr (fails when there are more). */
function oneLine(run: ScriptRun): string {
  const lines = run.stderr.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  return lines[0] ?? '';
}

/** A TCP server that accepts connections and never writes a byte. */
async function blackHole(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('no address');
  return {
    address: `127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('npm start with an emulator variable where nothing answers', () => {
  for (const variable of ['BIGTABLE_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST'] as const) {
    it(`exits within seconds with one line naming ${variable} and its address`, async () => {
      const emulators = inject('emulators');
      const dead = `127.0.0.1:${await freePort()}`;
      const run = await runNode(
        'dist/scripts/start.js',
        ['--port', String(await freePort()), '--subscriber-port', String(await freePort())],
        {
          // The other variable names a live emulator, so that only this one is wrong.
          BIGTABLE_EMULATOR_HOST: emulators.bigtable,
          PUBSUB_EMULATOR_HOST: emulators.pubsub,
          [variable]: dead,
        },
      );
      expect(run.code).not.toBe(0);
      const line = oneLine(run);
      expect(line).toContain(`${variable}=${dead} does not answer`);
      expect(line).toContain('unset it');
      expect(run.ms).toBeLessThan(HANG_MS);
    });
  }
});

describe('npm run demo where the stack is not', () => {
  let stack: OperationsStack;
  beforeAll(async () => {
    stack = await startOperationsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const demoEnv = (overrides: Record<string, string>) => ({
    GOOGLE_CLOUD_PROJECT: stack.env.GOOGLE_CLOUD_PROJECT ?? '',
    LRO_EVENTS_TOPIC: stack.env.LRO_EVENTS_TOPIC ?? '',
    LRO_NOTIFICATIONS_TOPIC: stack.env.LRO_NOTIFICATIONS_TOPIC ?? '',
    LRO_DEAD_LETTER_TOPIC: stack.env.LRO_DEAD_LETTER_TOPIC ?? '',
    ...overrides,
  });

  it('a dead PUBSUB_EMULATOR_HOST: one line naming it and the export line, and nothing created', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const run = await runNode(
      'dist/scripts/demo.js',
      ['--url', stack.url, '--step-ms', '50'],
      demoEnv({ PUBSUB_EMULATOR_HOST: dead }),
    );
    expect(run.code).not.toBe(0);
    const line = oneLine(run);
    expect(line).toContain(`PUBSUB_EMULATOR_HOST=${dead} does not answer`);
    expect(line).toContain('export');
    expect(run.ms).toBeLessThan(HANG_MS);
    // The API was reachable, yet the demo created nothing that would stay running.
    const page = await fetch(`${stack.url}/v1/operations?pageSize=100`);
    expect(((await page.json()) as { operations?: unknown[] }).operations ?? []).toEqual([]);
  });

  it('an emulator without the events topic is not the stack: one line saying so', async () => {
    const run = await runNode(
      'dist/scripts/demo.js',
      ['--url', stack.url],
      demoEnv({
        PUBSUB_EMULATOR_HOST: stack.env.PUBSUB_EMULATOR_HOST ?? '',
        LRO_EVENTS_TOPIC: `no-such-topic-${uniqueSuffix()}`,
      }),
    );
    expect(run.code).not.toBe(0);
    const line = oneLine(run);
    expect(line).toContain('has no topic no-such-topic-');
    expect(line).toContain('export');
    expect(run.ms).toBeLessThan(HANG_MS);
  });

  it('an API that never answers: one line naming --url and LRO_API_URL', async () => {
    const messaging = new Messaging(stack.config);
    await messaging.ensureTopic(stack.config.topics.events);
    const hole = await blackHole();
    try {
      const run = await runNode(
        'dist/scripts/demo.js',
        ['--url', `http://${hole.address}`],
        demoEnv({ PUBSUB_EMULATOR_HOST: stack.env.PUBSUB_EMULATOR_HOST ?? '' }),
      );
      expect(run.code).not.toBe(0);
      const line = oneLine(run);
      expect(line).toContain(`no operations API answers at http://${hole.address}`);
      expect(line).toContain('--url');
      expect(line).toContain('LRO_API_URL');
      expect(run.ms).toBeLessThan(HANG_MS);
    } finally {
      await hole.close();
      await messaging.deleteTopic(stack.config.topics.events);
      await messaging.close();
    }
  });

  it('lro against an API that never answers: one line naming --url and LRO_API_URL; a long wait is not cut', async () => {
    const hole = await blackHole();
    try {
      const runs = await Promise.all(
        [['get', 'x'], ['list'], ['watch', 'x'], ['wait', 'x'], ['dead-letters']].map((args) =>
          runNode('dist/bin/lro.js', [...args, '--url', `http://${hole.address}`], {}),
        ),
      );
      for (const run of runs) {
        expect(run.code, run.stderr).toBe(4);
        const line = oneLine(run);
        expect(line).toContain('the API cannot be reached');
        expect(line).toContain('no answer within');
        expect(line).toContain('--url');
        expect(run.ms).toBeLessThan(HANG_MS);
      }
      expect(oneLine(runs[0] as ScriptRun)).toContain(`at http://${hole.address}`);
      expect(oneLine(runs[0] as ScriptRun)).toContain('LRO_API_URL');
    } finally {
      await hole.close();
    }
    // A server wait that lasts longer than the answer timeout is not an unreachable API.
    const created = await fetch(`${stack.url}/v1/operations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operationId: `long-${uniqueSuffix()}` }),
    });
    const { name } = (await created.json()) as { name: string };
    const wait = await runNode(
      'dist/bin/lro.js',
      ['wait', name, '--json', '--timeout', '13s', '--url', stack.url],
      {},
    );
    expect(wait.code, wait.stderr).toBe(3);
    expect(wait.ms).toBeGreaterThanOrEqual(13_000);
  });

  it('lro against a dead port: one line naming the URL, --url and LRO_API_URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await runNode('dist/bin/lro.js', ['get', 'x'], { LRO_API_URL: url });
    expect(run.code).toBe(4);
    const line = oneLine(run);
    expect(line).toContain(`the API cannot be reached at ${url}`);
    expect(line).toContain('--url (or LRO_API_URL)');
    expect(run.ms).toBeLessThan(HANG_MS);
  });
});

describe('worker SDK where Pub/Sub does not answer', () => {
  const config = (pubsubEmulatorHost: string) => {
    const base = testConfig();
    return { projectId: base.projectId, pubsubEmulatorHost, topics: base.topics };
  };

  const expectUnreachable = (err: unknown, address: string) => {
    expect(err).toBeInstanceOf(LroError);
    const error = err as LroError;
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toContain(`Pub/Sub emulator at ${address} did not answer`);
    expect(error.message).toContain('PUBSUB_EMULATOR_HOST');
    expect(error.message.split('\n')).toHaveLength(1);
  };

  it('open() rejects within its default 10 s, naming the address and PUBSUB_EMULATOR_HOST', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const err = await OperationReporter.open({ operation: 'x', config: config(dead) }).catch(
      (e: unknown) => e,
    );
    expectUnreachable(err, dead);
    expect(err).toBeInstanceOf(LroError);
    expect(Date.now() - started).toBeLessThan(HANG_MS);
  });

  it('open() against a black hole rejects after connectTimeoutMs', async () => {
    const hole = await blackHole();
    try {
      const started = Date.now();
      const err = await OperationReporter.open({
        operation: 'x',
        config: config(hole.address),
        connectTimeoutMs: 2_000,
      }).catch((e: unknown) => e);
      expectUnreachable(err, hole.address);
      expect(Date.now() - started).toBeLessThan(HANG_MS);
    } finally {
      await hole.close();
    }
  });

  it('publishing from a reporter that was never opened rejects within seconds too', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const reporter = new OperationReporter({
      operation: 'x',
      config: config(dead),
      topics: { notifications: false },
      connectTimeoutMs: 2_000,
      heartbeatIntervalMs: 0,
    });
    try {
      const started = Date.now();
      const err = await reporter
        .progress({ '@type': 'type.googleapis.com/test.Progress', percent: 1 })
        .catch((e: unknown) => e);
      expectUnreachable(err, dead);
      expect(Date.now() - started).toBeLessThan(HANG_MS);
    } finally {
      await reporter.close();
    }
  });
});
