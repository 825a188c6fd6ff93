/**
 * `npm start`'s record of what it runs: `<data dir>/run.json` (the data directory is `.lro/` in
 * the repository unless `--data DIR` says otherwise) lists the process of `npm start` itself and
 * the emulators and functions it started, each with its pid and address. It is written as each
 * one starts and removed after an orderly stop (Ctrl-C, SIGTERM, SIGHUP), so a file that is still
 * there names what a run that was killed left behind; `leftovers` tells which of those processes
 * are still alive and answering at their address.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isListening } from '../shared/local/emulators.js';

export type Role = 'bigtable' | 'pubsub' | 'api' | 'subscriber';

export interface RecordedProcess {
  role: Role;
  pid: number;
  /** host:port (emulators) or URL (functions). */
  address: string;
}

export interface RunRecord {
  /** pid of the `npm start` process (dist/scripts/start.js). */
  owner: number;
  startedAt: string;
  processes: RecordedProcess[];
}

export const ROLE_NAMES: Record<Role, string> = {
  bigtable: 'Bigtable emulator',
  pubsub: 'Pub/Sub emulator',
  api: 'API function',
  subscriber: 'subscriber function',
};

export function runFilePath(dataDir: string): string {
  return join(dataDir, 'run.json');
}

export function readRunFile(dataDir: string): RunRecord | undefined {
  let text: string;
  try {
    text = readFileSync(runFilePath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<RunRecord>;
    if (typeof parsed.owner !== 'number' || !Array.isArray(parsed.processes)) return undefined;
    const processes = parsed.processes.filter(
      (p): p is RecordedProcess =>
        typeof p?.pid === 'number' &&
        Number.isInteger(p.pid) &&
        p.pid > 1 &&
        typeof p.address === 'string' &&
        p.role in ROLE_NAMES,
    );
    return { owner: parsed.owner, startedAt: String(parsed.startedAt ?? ''), processes };
  } catch {
    return undefined; // a torn or foreign file names nothing
  }
}

/** Writes the record atomically (a rename), so a reader never sees half of it. */
export function writeRunFile(dataDir: string, record: RunRecord): void {
  mkdirSync(dataDir, { recursive: true });
  const file = runFilePath(dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(temporary, file);
}

export function removeRunFile(dataDir: string): void {
  rmSync(runFilePath(dataDir), { force: true });
}

/**
 * Whether a process with this pid runs and may be signalled by us. An exited process that nobody
 * has reaped yet (a zombie: its parent was killed and the machine's init does not reap, as in
 * some containers) does not count.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false; // ESRCH: gone; EPERM: someone else's process now, not ours
  }
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return state.trim() !== '' && !state.trim().startsWith('Z');
  } catch {
    return false; // ps exits 1 when the pid is gone
  }
}

function hostPort(address: string): string {
  return address.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/**
 * The recorded processes that are still alive and answer at their recorded address (a pid alone
 * may have been reused by an unrelated process since).
 */
export async function leftovers(record: RunRecord): Promise<RecordedProcess[]> {
  const alive = await Promise.all(
    record.processes.map(
      async (p) => isAlive(p.pid) && (await isListening(hostPort(p.address), 1_000)),
    ),
  );
  return record.processes.filter((_, i) => alive[i]);
}

/**
 * Stops a recorded process and its process group (the emulators run in their own groups; the Pub/
 * Sub emulator is a shell script that starts Java): SIGTERM, then SIGKILL after `graceMs`, then
 * waits until the pid is gone and its address no longer answers.
 */
export async function stopRecorded(p: RecordedProcess, graceMs = 5_000): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    for (const target of [-p.pid, p.pid]) {
      try {
        process.kill(target, name);
      } catch {
        // not a group leader, or already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  let killed = false;
  while (isAlive(p.pid) || (await isListening(hostPort(p.address), 300))) {
    if (!killed && Date.now() > deadline) {
      signal('SIGKILL');
      killed = true;
    }
    if (killed && Date.now() > deadline + graceMs) {
      throw new Error(`${ROLE_NAMES[p.role]} (pid ${p.pid}) did not stop`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function describe(p: RecordedProcess): string {
  return `${ROLE_NAMES[p.role]} (pid ${p.pid}, ${hostPort(p.address)})`;
}
