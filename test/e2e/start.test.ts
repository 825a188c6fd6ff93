/**
 * `npm start` (dist/scripts/start.js) as a newcomer runs it: up with one block saying what runs
 * where, down on Ctrl-C with exit 0 and its ports free, and one line when it cannot start.
 * It reuses the run's emulators and uses table and topic names unique to the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/local/emulators.js';
import { teardownStack } from '../../shared/local/provision.js';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { testEnv } from '../support/env.js';
import { ROOT } from '../support/functions.js';

const START = resolve(ROOT, 'dist/scripts/start.js');

interface Started {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnStart(args: string[], env: Record<string, string>): Started {
  const child = spawn(process.execPath, [START, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function untilReady(started: Started, timeoutMs = 45_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!started.stdout().includes('Ctrl-C stops')) {
    if (started.child.exitCode !== null) {
      throw new Error(`start exited with ${started.child.exitCode}:\n${started.stderr()}`);
    }
    if (Date.now() > deadline)
      throw new Error(`not ready:\n${started.stdout()}${started.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return started.stdout();
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, exclusive: true }, () => server.close(() => done(true)));
  });
}

const envs: Record<string, string>[] = [];
afterAll(async () => {
  await Promise.all(envs.map((env) => teardownStack(loadConfig(env))));
});

describe('npm start', () => {
  it('prints one block saying what runs where, serves the API, and stops on SIGINT with exit 0', async () => {
    const env = testEnv();
    envs.push(env);
    const port = await freePort();
    let subscriberPort = await freePort();
    while (subscriberPort === port) subscriberPort = await freePort();
    const started = spawnStart(
      ['--port', String(port), '--subscriber-port', String(subscriberPort)],
      env,
    );
    const block = await untilReady(started);
    const api = `http://127.0.0.1:${port}`;
    expect(block).toContain(`API         ${api}`);
    expect(block).toContain(`console     ${api}/console/`);
    expect(block).toContain(`subscriber  http://127.0.0.1:${subscriberPort}`);
    expect(block).toContain(`Bigtable    ${env.BIGTABLE_EMULATOR_HOST}   emulator, reused`);
    expect(block).toContain(`Pub/Sub     ${env.PUBSUB_EMULATOR_HOST}   emulator, reused`);
    expect(block).toContain(`table ${env.LRO_BIGTABLE_TABLE}`);
    expect(block).toContain(env.LRO_EVENTS_TOPIC);
    expect(block).toContain(env.LRO_NOTIFICATIONS_TOPIC);
    expect(block).toContain(`curl -s -X POST ${api}/v1/operations`);
    expect(block).toContain(`npx lro list --url ${api}`);
    expect(block.match(/cloud-lro is running/g)).toHaveLength(1);

    const created = await fetch(`${api}/v1/operations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operationId: 'hello' }),
    });
    expect(created.status).toBe(200);
    expect(await created.json()).toMatchObject({ name: 'operations/hello', done: false });

    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
    expect(started.stderr()).not.toMatch(/\n\s+at /);
    expect(await portIsFree(port)).toBe(true);
    expect(await portIsFree(subscriberPort)).toBe(true);
  });

  it('is idempotent: a second start on existing resources comes up and stops on SIGTERM', async () => {
    const env = testEnv();
    envs.push(env);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const port = await freePort();
      let subscriberPort = await freePort();
      while (subscriberPort === port) subscriberPort = await freePort();
      const started = spawnStart(
        ['--port', String(port), '--subscriber-port', String(subscriberPort)],
        env,
      );
      await untilReady(started);
      const listed = await fetch(`http://127.0.0.1:${port}/v1/operations`);
      expect(listed.status).toBe(200);
      started.child.kill(signal);
      expect(await started.exited).toBe(0);
      expect(await portIsFree(port)).toBe(true);
      expect(await portIsFree(subscriberPort)).toBe(true);
    }
  });

  it('a port in use is one line on stderr and a non-zero exit', async () => {
    const env = testEnv();
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const started = spawnStart(['--port', String(port)], env);
      const code = await started.exited;
      expect(code).not.toBe(0);
      const lines = started.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`port ${port} is already in use`);
      expect(started.stdout()).toBe('');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('a bad flag is a usage error (exit 2)', async () => {
    const started = spawnStart(['--port', 'eighty'], testEnv());
    expect(await started.exited).toBe(2);
    expect(started.stderr().trim().split('\n')).toHaveLength(1);
    expect(started.stderr()).toContain('--port must be a port number');
  });
});
