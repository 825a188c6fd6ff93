/**
 * Local data survives a restart of `npm start`: operations (a running one included) and dead
 * letters are still there after Ctrl-C and a new `npm start` with new emulators, a wait on the
 * running operation still ends when its worker reports, and `--fresh` starts empty. Each run
 * starts its own emulators on free ports, with the documented resource names.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/local/emulators.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { ROOT } from '../support/functions.js';

const START = resolve(ROOT, 'dist/scripts/start.js');
const dataDir = mkdtempSync(join(tmpdir(), 'lro-start-kept-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) {
    // A failed assertion may leave a run up: end it (and what it started) the way Ctrl-C does.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  api: string;
  pubsub: string;
  block: string;
  exited: Promise<number | null>;
}

async function start(extra: string[] = []): Promise<Run> {
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [api, subscriber, bigtable, pubsub] = [...ports] as [number, number, number, number];
  const child = spawn(
    process.execPath,
    [
      START,
      ...['--port', String(api), '--subscriber-port', String(subscriber)],
      ...['--bigtable-port', String(bigtable), '--pubsub-port', String(pubsub)],
      ...['--data', dataDir, ...extra],
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 150_000;
  while (!out.includes('Ctrl-C stops')) {
    if (child.exitCode !== null) throw new Error(`start exited:\n${out}`);
    if (Date.now() > deadline) throw new Error(`not ready:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    api: `http://127.0.0.1:${api}`,
    pubsub: `127.0.0.1:${pubsub}`,
    block: out,
    exited,
  };
}

async function stop(run: Run): Promise<void> {
  run.child.kill('SIGINT');
  expect(await run.exited).toBe(0);
}

const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('npm start keeps local data across restarts', () => {
  it('keeps operations (running ones too) and dead letters; their waits still end; --fresh starts empty', async () => {
    const first = await start();
    const created = await json(`${first.api}/v1/operations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operationId: 'kept-running' }),
    });
    expect(created.status).toBe(200);
    // An event that cannot be applied becomes a dead letter.
    const messaging = new Messaging({ projectId: 'lro-local', pubsubEmulatorHost: first.pubsub });
    await messaging.pubsub.topic('lro-events').publishMessage({ data: Buffer.from('not json') });
    await messaging.close();
    const deadline = Date.now() + 60_000;
    let deadLetters: unknown[] = [];
    while (deadLetters.length === 0 && Date.now() < deadline) {
      deadLetters =
        ((await json(`${first.api}/v1/deadLetters`)).body.deadLetters as unknown[]) ?? [];
      if (deadLetters.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(deadLetters).toHaveLength(1);
    await stop(first);
    expect(existsSync(join(dataDir, 'bigtable.json'))).toBe(true);

    const second = await start();
    expect(second.block).toMatch(/rows restored/);
    const kept = await json(`${second.api}/v1/operations/kept-running`);
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ name: 'operations/kept-running', done: false });
    const letters = await json(`${second.api}/v1/deadLetters`);
    expect(letters.body.deadLetters).toHaveLength(1);
    // A wait on the restored running operation ends when its worker reports.
    const waiting = json(`${second.api}/v1/operations/kept-running:wait`, {
      method: 'POST',
      body: JSON.stringify({ timeout: '60s' }),
    });
    const reporter = await OperationReporter.open({
      operation: 'kept-running',
      config: {
        projectId: 'lro-local',
        pubsubEmulatorHost: second.pubsub,
        topics: { events: 'lro-events', notifications: 'lro-notifications' },
      },
      topics: { notifications: false },
    });
    await reporter.succeed({ '@type': 'type.googleapis.com/test.Result', ok: true });
    await reporter.close();
    const waited = await waiting;
    expect(waited.body).toMatchObject({ name: 'operations/kept-running', done: true });
    await stop(second);

    const fresh = await start(['--fresh']);
    expect(fresh.block).not.toMatch(/rows restored/);
    expect((await json(`${fresh.api}/v1/operations/kept-running`)).status).toBe(404);
    await stop(fresh);
  }, 600_000);
});
