/**
 * The Bigtable and Pub/Sub emulators of the Google Cloud SDK, for `npm start` and the tests.
 *
 * `startEmulators` reuses emulators named by BIGTABLE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST when
 * they are set (after checking within a few seconds that something answers there, since the
 * client libraries would otherwise retry for minutes), and otherwise starts each one on a free
 * loopback port, waits until it answers and
 * returns a handle whose `stop()` ends exactly the processes it started (each in its own process
 * group, since the Pub/Sub emulator is a shell script that starts Java).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export interface EmulatorHosts {
  bigtable: string;
  pubsub: string;
}

export interface RunningEmulators extends EmulatorHosts {
  /** Which of the two this handle started (and will stop). */
  started: { bigtable: boolean; pubsub: boolean };
  stop(): Promise<void>;
}

export interface StartEmulatorsOptions {
  env?: Record<string, string | undefined>;
  /** Fixed ports; a free port is chosen for each one left out. */
  bigtablePort?: number;
  pubsubPort?: number;
  /** How long to wait for an emulator to answer. */
  readyTimeoutMs?: number;
  /** Where the emulators' output goes (ignored when undefined). */
  onOutput?: (which: 'bigtable' | 'pubsub', chunk: string) => void;
  /**
   * Called as soon as an emulator's process is spawned, with its pid (also its process group's
   * id) and address, so that a caller can record what it started before it is ready.
   */
  onSpawn?: (which: 'bigtable' | 'pubsub', pid: number, hostPort: string) => void;
}

export class EmulatorError extends Error {
  override readonly name = 'EmulatorError';
}

const SDK_HINT =
  'install the Google Cloud SDK with its emulators (Debian: apt-get install google-cloud-cli ' +
  'google-cloud-cli-bigtable-emulator google-cloud-cli-pubsub-emulator, plus a Java 11+ runtime), ' +
  'or set BIGTABLE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST to running emulators';

/** The SDK root: CLOUDSDK_ROOT_DIR, `gcloud info`, or the Debian location. */
export function findSdkRoot(env: Record<string, string | undefined> = process.env): string {
  const candidates: string[] = [];
  if (env.CLOUDSDK_ROOT_DIR) candidates.push(env.CLOUDSDK_ROOT_DIR);
  try {
    const root = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 15_000,
    }).trim();
    if (root) candidates.push(root);
  } catch {
    // gcloud missing or failing: fall back to the usual locations.
  }
  candidates.push(
    '/usr/lib/google-cloud-sdk',
    '/usr/share/google-cloud-sdk',
    '/opt/google-cloud-sdk',
  );
  for (const root of candidates) {
    if (existsSync(join(root, 'platform'))) return root;
  }
  throw new EmulatorError(`Google Cloud SDK not found; ${SDK_HINT}`);
}

export function bigtableEmulatorPath(sdkRoot: string): string {
  return join(sdkRoot, 'platform', 'bigtable-emulator', 'cbtemulator');
}

export function pubsubEmulatorPath(sdkRoot: string): string {
  return join(sdkRoot, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** Whether something accepts TCP connections at host:port. */
export function isListening(hostPort: string, timeoutMs = 1_000): Promise<boolean> {
  const [host, port] = splitHostPort(hostPort);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  return [host || '127.0.0.1', Number(hostPort.slice(i + 1))];
}

/** How long a reused emulator gets to accept a TCP connection (it runs on this machine). */
export const EMULATOR_PROBE_TIMEOUT_MS = 3_000;

/**
 * Throws an EmulatorError naming the variable when nothing accepts connections at the address it
 * gives: one line that says how to go on.
 */
export async function checkEmulatorAnswers(
  variable: 'BIGTABLE_EMULATOR_HOST' | 'PUBSUB_EMULATOR_HOST',
  hostPort: string,
  timeoutMs = EMULATOR_PROBE_TIMEOUT_MS,
): Promise<void> {
  const [, port] = splitHostPort(hostPort);
  const answers = Number.isInteger(port) && port > 0 && port < 65536;
  if (answers && (await isListening(hostPort, timeoutMs))) return;
  throw new EmulatorError(
    `${variable}=${hostPort} does not answer: unset it to have npm start (or npm test) start its own emulator, or start the emulator there`,
  );
}

async function waitUntilListening(
  hostPort: string,
  child: ChildProcess,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EmulatorError(`${what} exited before it answered (code ${child.exitCode})`);
    }
    if (await isListening(hostPort, 500)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new EmulatorError(`${what} did not answer on ${hostPort} within ${timeoutMs} ms`);
}

function spawnGroup(
  command: string,
  args: string[],
  which: 'bigtable' | 'pubsub',
  onOutput: StartEmulatorsOptions['onOutput'],
): ChildProcess {
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', onOutput ? 'pipe' : 'ignore', onOutput ? 'pipe' : 'ignore'],
  });
  if (onOutput) {
    child.stdout?.on('data', (chunk: Buffer) => onOutput(which, chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => onOutput(which, chunk.toString()));
  }
  child.on('error', () => {
    // Reported through exitCode / waitUntilListening.
  });
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

/** Starts (or reuses) both emulators; see the module comment. */
export async function startEmulators(
  options: StartEmulatorsOptions = {},
): Promise<RunningEmulators> {
  const env = options.env ?? process.env;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopGroup));
  };
  try {
    let bigtable = env.BIGTABLE_EMULATOR_HOST;
    let pubsub = env.PUBSUB_EMULATOR_HOST;
    let sdkRoot: string | undefined;
    const started = { bigtable: false, pubsub: false };
    await Promise.all([
      bigtable ? checkEmulatorAnswers('BIGTABLE_EMULATOR_HOST', bigtable) : undefined,
      pubsub ? checkEmulatorAnswers('PUBSUB_EMULATOR_HOST', pubsub) : undefined,
    ]);
    if (!bigtable) {
      sdkRoot ??= findSdkRoot(env);
      const binary = bigtableEmulatorPath(sdkRoot);
      if (!existsSync(binary)) {
        throw new EmulatorError(`Bigtable emulator not found at ${binary}; ${SDK_HINT}`);
      }
      const port = options.bigtablePort ?? (await freePort());
      bigtable = `127.0.0.1:${port}`;
      if (await isListening(bigtable)) throw new EmulatorError(`port ${port} is already in use`);
      const child = spawnGroup(
        binary,
        ['-host', '127.0.0.1', '-port', String(port)],
        'bigtable',
        options.onOutput,
      );
      children.push(child);
      if (child.pid !== undefined) options.onSpawn?.('bigtable', child.pid, bigtable);
      started.bigtable = true;
      await waitUntilListening(bigtable, child, 'Bigtable emulator', readyTimeoutMs);
    }
    if (!pubsub) {
      sdkRoot ??= findSdkRoot(env);
      const script = pubsubEmulatorPath(sdkRoot);
      if (!existsSync(script)) {
        throw new EmulatorError(`Pub/Sub emulator not found at ${script}; ${SDK_HINT}`);
      }
      const port = options.pubsubPort ?? (await freePort());
      pubsub = `127.0.0.1:${port}`;
      if (await isListening(pubsub)) throw new EmulatorError(`port ${port} is already in use`);
      const child = spawnGroup(
        script,
        ['--host=127.0.0.1', `--port=${port}`],
        'pubsub',
        options.onOutput,
      );
      children.push(child);
      if (child.pid !== undefined) options.onSpawn?.('pubsub', child.pid, pubsub);
      started.pubsub = true;
      await waitUntilListening(pubsub, child, 'Pub/Sub emulator', readyTimeoutMs);
    }
    return { bigtable, pubsub, started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
