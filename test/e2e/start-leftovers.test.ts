/**
 * `npm start` leaves nothing behind: closing its terminal (SIGHUP to its process group, with the
 * terminal's output gone) stops the functions and the emulators it started, as Ctrl-C does; and
 * when an earlier run was killed outright (SIGKILL, which nothing can handle), the next run finds
 * that run's emulators through the run file in its data directory, says so in one line, and
 * reuses them (--reuse-emulators, stopping them when it stops) or stops them and starts new ones
 * (--stop-emulators). Each run here starts its own emulators on free ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../scripts/run-file.js';
import { freePort, isListening } from '../../shared/local/emulators.js';
import { ROOT } from '../support/functions.js';

const START = resolve(ROOT, 'dist/scripts/start.js');
const dataDirs: string[] = [];
const pidsSeen = new Set<number>();

interface Run {
  child: ChildProcess;
  output(): string;
  stdout(): string;
  exited: Promise<number | null>;
}

interface Ports {
  api: number;
  subscriber: number;
  bigtable: number;
  pubsub: number;
}

interface Recorded {
  owner: number;
  processes: { role: string; pid: number; address: string }[];
}

async function freePorts(): Promise<Ports> {
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [api, subscriber, bigtable, pubsub] = [...ports] as [number, number, number, number];
  return { api, subscriber, bigtable, pubsub };
}

/** dist/scripts/start.js in its own process group, as a terminal runs `npm start`. */
function start(dataDir: string, ports: Ports, extra: string[] = []): Run {
  const args = [
    START,
    '--port',
    String(ports.api),
    '--subscriber-port',
    String(ports.subscriber),
    '--bigtable-port',
    String(ports.bigtable),
    '--pubsub-port',
    String(ports.pubsub),
    '--data',
    dataDir,
    ...extra,
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    // No emulator variables: it starts its own emulators.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid !== undefined) pidsSeen.add(child.pid);
  let out = '';
  let all = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    all += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    all += c.toString();
  });
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, output: () => all, stdout: () => out, exited };
}

async function untilReady(run: Run, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!run.stdout().includes('Ctrl-C stops')) {
    if (run.child.exitCode !== null) throw new Error(`start exited:\n${run.output()}`);
    if (Date.now() > deadline) throw new Error(`not ready:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return run.stdout();
}

function readRecord(dataDir: string): Recorded {
  const record = JSON.parse(readFileSync(join(dataDir, 'run.json'), 'utf8')) as Recorded;
  for (const p of record.processes) pidsSeen.add(p.pid);
  return record;
}

const alive = isAlive;

const listening = (port: number) => isListening(`127.0.0.1:${port}`, 1_000);

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lro-start-data-'));
  dataDirs.push(dir);
  return dir;
}

afterAll(async () => {
  // Whatever a failed assertion left running: its process groups.
  for (const pid of pidsSeen) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe('npm start leaves nothing behind', () => {
  it('SIGHUP to its process group (the terminal closed) stops the functions and the emulators it started', async () => {
    const dataDir = newDataDir();
    const ports = await freePorts();
    const run = start(dataDir, ports);
    const block = await untilReady(run);
    expect(block).toContain(`127.0.0.1:${ports.bigtable}   emulator, started by npm start`);
    const record = readRecord(dataDir);
    expect(record.owner).toBe(run.child.pid);
    expect(record.processes.map((p) => p.role).sort()).toEqual([
      'api',
      'bigtable',
      'pubsub',
      'subscriber',
    ]);

    // The terminal is gone: nobody reads its output any more, and its group gets SIGHUP.
    run.child.stdout?.destroy();
    run.child.stderr?.destroy();
    process.kill(-(run.child.pid as number), 'SIGHUP');
    expect(await run.exited).toBe(0);

    for (const p of record.processes) expect(alive(p.pid), `${p.role} pid ${p.pid}`).toBe(false);
    for (const port of Object.values(ports))
      expect(await listening(port), `port ${port}`).toBe(false);
    expect(existsSync(join(dataDir, 'run.json'))).toBe(false);
  }, 300_000);

  it('after a run killed outright, names its emulators in one line, then reuses them with --reuse-emulators (and stops them)', async () => {
    const dataDir = newDataDir();
    const ports = await freePorts();
    const killed = start(dataDir, ports);
    await untilReady(killed);
    process.kill(-(killed.child.pid as number), 'SIGKILL');
    await killed.exited;
    const record = readRecord(dataDir);
    const emulators = record.processes.filter((p) => p.role === 'bigtable' || p.role === 'pubsub');
    expect(emulators).toHaveLength(2);
    // SIGKILL reached its group only: the emulators, in groups of their own, are left running.
    expect(await listening(ports.bigtable)).toBe(true);
    expect(await listening(ports.pubsub)).toBe(true);

    // Without a terminal to ask in and without a flag: one line saying what is left and what to do.
    const asked = start(dataDir, await freePorts());
    expect(await asked.exited).toBe(1);
    const lines = asked.output().trim().split('\n');
    expect(lines, asked.output()).toHaveLength(1);
    expect(lines[0]).toContain(`an earlier npm start (pid ${record.owner}`);
    for (const p of emulators) expect(lines[0]).toContain(`(pid ${p.pid}, ${p.address})`);
    expect(lines[0]).toContain('--reuse-emulators');
    expect(lines[0]).toContain('--stop-emulators');
    expect(await listening(ports.pubsub)).toBe(true);

    const apiPorts = await freePorts();
    const reusing = start(dataDir, apiPorts, ['--reuse-emulators']);
    const block = await untilReady(reusing);
    expect(block).toContain(
      `Bigtable    127.0.0.1:${ports.bigtable}   emulator, left by an earlier npm start, reused`,
    );
    expect(block).toContain(
      `Pub/Sub     127.0.0.1:${ports.pubsub}   emulator, left by an earlier npm start, reused`,
    );
    const created = await fetch(`http://127.0.0.1:${apiPorts.api}/v1/operations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ operationId: 'after-restart' }),
    });
    expect(created.status).toBe(200);
    expect(readRecord(dataDir).owner).toBe(reusing.child.pid);

    reusing.child.kill('SIGTERM');
    expect(await reusing.exited).toBe(0);
    for (const p of emulators) expect(alive(p.pid), `${p.role} pid ${p.pid}`).toBe(false);
    expect(await listening(ports.bigtable)).toBe(false);
    expect(await listening(ports.pubsub)).toBe(false);
    expect(existsSync(join(dataDir, 'run.json'))).toBe(false);
  }, 300_000);

  it('after a run killed outright, --stop-emulators stops its emulators and starts new ones on the same ports', async () => {
    const dataDir = newDataDir();
    const ports = await freePorts();
    const killed = start(dataDir, ports);
    await untilReady(killed);
    process.kill(-(killed.child.pid as number), 'SIGKILL');
    await killed.exited;
    const old = readRecord(dataDir).processes.filter(
      (p) => p.role !== 'api' && p.role !== 'subscriber',
    );
    expect(await listening(ports.bigtable)).toBe(true);

    const fresh = start(dataDir, ports, ['--stop-emulators']);
    const block = await untilReady(fresh);
    expect(block).toContain('stopping what an earlier npm start');
    expect(block).toContain(`127.0.0.1:${ports.bigtable}   emulator, started by npm start`);
    expect(block).toContain(`127.0.0.1:${ports.pubsub}   emulator, started by npm start`);
    for (const p of old) expect(alive(p.pid), `${p.role} pid ${p.pid}`).toBe(false);
    const now = readRecord(dataDir);
    expect(now.owner).toBe(fresh.child.pid);

    fresh.child.kill('SIGINT');
    expect(await fresh.exited).toBe(0);
    for (const p of now.processes) expect(alive(p.pid), `${p.role} pid ${p.pid}`).toBe(false);
    for (const port of Object.values(ports))
      expect(await listening(port), `port ${port}`).toBe(false);
  }, 300_000);
});
