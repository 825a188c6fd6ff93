/**
 * Runs a built function (dist/functions/index.js) under the real functions framework in a child
 * process, as Cloud Functions does. Used by `npm start`, the tests and the benchmarks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isListening } from '../shared/local/emulators.js';

/** The repository root, from dist/scripts or scripts alike. */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
const FRAMEWORK = resolve(ROOT, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
export const FUNCTION_SOURCE = resolve(ROOT, 'dist/functions/index.js');
/** The deployed archive's content (`npm run build:deploy`): the bundle and its package.json. */
export const DEPLOY_SOURCE = resolve(ROOT, 'dist/deploy');

/**
 * What a function runs from: `build`, the compiled modules with the repository's node_modules;
 * `deploy`, the bundle that is deployed (dist/deploy), which resolves only the functions framework
 * from node_modules. LRO_FUNCTION_SOURCE chooses for a whole test or bench run.
 */
export type FunctionSource = 'build' | 'deploy';

export function functionSource(env: NodeJS.ProcessEnv = process.env): FunctionSource {
  return env.LRO_FUNCTION_SOURCE === 'deploy' ? 'deploy' : 'build';
}

export type FunctionTarget = 'operations' | 'subscriber' | 'subscriberPull' | 'sweeper';

export interface RunningFunction {
  target: FunctionTarget;
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything the function wrote so far (its structured logs). */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface StartFunctionOptions {
  /** Called with each chunk the function writes. */
  onOutput?: (chunk: string) => void;
  readyTimeoutMs?: number;
  /** Default: functionSource() */
  source?: FunctionSource;
  /**
   * A directory holding an installed copy of the deployed archive (its package.json, bundle and
   * node_modules): run from there with its own functions framework, as the platform does.
   */
  sourceDir?: string;
  /** Arguments for node before the framework's (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** The working directory of the function's process. Default: sourceDir, else the repository. */
  cwd?: string;
}

export async function startFunction(
  target: FunctionTarget,
  env: Record<string, string>,
  port: number,
  options: StartFunctionOptions = {},
): Promise<RunningFunction> {
  const source =
    options.sourceDir ??
    ((options.source ?? functionSource()) === 'deploy' ? DEPLOY_SOURCE : FUNCTION_SOURCE);
  const framework = options.sourceDir
    ? resolve(options.sourceDir, 'node_modules/@google-cloud/functions-framework/build/src/main.js')
    : FRAMEWORK;
  if (!existsSync(source)) {
    throw new Error(`${source} is missing: run "npm run build" first`);
  }
  if (await isListening(`127.0.0.1:${port}`, 300)) {
    throw new Error(`port ${port} is already in use`);
  }
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      framework,
      `--target=${target}`,
      `--source=${source}`,
      `--port=${port}`,
    ],
    {
      cwd: options.cwd ?? options.sourceDir ?? ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'production',
        // The compiled modules start as before, without the warm-up (npm start, most tests); the
        // deployed artifact starts as it does in the cloud. An explicit value wins either way.
        ...(source === FUNCTION_SOURCE ? { LRO_WARM_UP_TIMEOUT: '0s' } : {}),
        ...env,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    if (output.length < 4_000_000) output += text;
    options.onOutput?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  while (!(await isListening(`127.0.0.1:${port}`, 300))) {
    if (child.exitCode !== null) throw new Error(`${target} exited early:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${target} did not listen on ${port}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await exited;
    }
  };
  return {
    target,
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    output: () => output,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
