/**
 * Runs a built function (dist/functions/index.js) under the real functions framework in a child
 * process, as Cloud Functions does, and stops it. Build first (`npm run build`; `npm test` does).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort, isListening } from '../../shared/emulators.js';

export const ROOT = resolve(import.meta.dirname, '../..');
const FRAMEWORK = resolve(ROOT, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const SOURCE = resolve(ROOT, 'dist/functions/index.js');

export interface RunningFunction {
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything the function wrote (structured logs), for assertions. */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export async function startFunction(
  target: 'operations' | 'subscriber',
  env: Record<string, string>,
  port?: number,
): Promise<RunningFunction> {
  if (!existsSync(SOURCE)) throw new Error(`${SOURCE} missing: run "npm run build" first`);
  const chosen = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [FRAMEWORK, `--target=${target}`, `--source=${SOURCE}`, `--port=${chosen}`],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        ...env,
        PORT: String(chosen),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  while (!(await isListening(`127.0.0.1:${chosen}`, 300))) {
    if (child.exitCode !== null) throw new Error(`${target} exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${target} did not listen on ${chosen}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
  };
  return {
    url: `http://127.0.0.1:${chosen}`,
    port: chosen,
    process: child,
    output: () => output,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
