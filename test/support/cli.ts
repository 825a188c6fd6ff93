/** The built `lro` command, run as a child process against an API URL, for tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from './functions.js';

export const LRO = resolve(ROOT, 'dist/bin/lro.js');

export interface LroResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface LroRun {
  child: ChildProcess;
  /** Resolves when it exited, with everything it printed. */
  done: Promise<LroResult>;
  /** What it printed so far (and its exit code once it exited). */
  output: () => LroResult;
}

/** Runs `lro <args> --url <url>` with PATH only in its environment. */
export function spawnLro(args: string[], url: string): LroRun {
  const child = spawn(process.execPath, [LRO, ...args, '--url', url], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  const done = new Promise<LroResult>((r) =>
    child.once('close', (code) => r({ code, stdout, stderr })),
  );
  return { child, done, output: () => ({ code: child.exitCode, stdout, stderr }) };
}
