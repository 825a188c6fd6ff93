/** Runs one of the project's built scripts as a newcomer would, with a minimal environment. */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT } from './functions.js';

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time from spawn to exit. */
  ms: number;
}

/**
 * Runs `node <ROOT>/<script> ...args` with PATH, HOME, LRO_DATA_DIR and `env` only, and resolves with its exit
 * code and output. `killAfterMs` kills it (SIGKILL) if it is still running then, so that a hang
 * fails the test instead of leaving a process behind.
 */
let runs = 0;

export function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  options: { killAfterMs?: number } = {},
): Promise<ScriptRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [resolve(ROOT, script), ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      // npm start records what it runs there: never the repository's own .lro/ of a developer.
      LRO_DATA_DIR: join(tmpdir(), `lro-test-data-${process.pid}-${++runs}`),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const guard =
    options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  return new Promise((r) =>
    child.once('close', (code) => {
      clearTimeout(guard);
      r({ code, stdout, stderr, ms: Date.now() - started });
    }),
  );
}
