/**
 * `npm start`: the whole system on this machine (scripts/stack.ts), one block saying what runs
 * where and how to try it, and an orderly stop on Ctrl-C (SIGINT), SIGTERM or SIGHUP (the
 * terminal closed) that ends exactly what this process started. What it starts is recorded in
 * the data directory (scripts/run-file.ts), so that the next run can say what a killed run left
 * behind and offer to reuse or stop it. Failures to start are one line on stderr and a non-zero
 * exit.
 *
 *   node dist/scripts/start.js --help
 */
import { createServer } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { EmulatorError } from '../shared/local/emulators.js';
import { type Config, loadConfig } from '../shared/service/runtime/config.js';
import { runDemo } from './demo.js';
import {
  dataFilePath,
  loadTable,
  removeSavedData,
  SAVE_INTERVAL_MS,
  saveTable,
} from './local-data.js';
import {
  describe,
  isAlive,
  leftovers,
  type RecordedProcess,
  type RunRecord,
  readRunFile,
  removeRunFile,
  runFilePath,
  stopRecorded,
  writeRunFile,
} from './run-file.js';
import { ROOT } from './run-function.js';
import { type Stack, startStack } from './stack.js';

/** Where `npm start` runs the emulators when it starts them: the gcloud emulators' own defaults. */
export const LOCAL_EMULATOR_PORTS = { bigtable: 8086, pubsub: 8085 } as const;

const USAGE = `Usage: npm start -- [options]
  --port N             port of the operations API (default: PORT, else 8080)
  --subscriber-port N  port of the subscriber function (default: the API port + 1)
  --bigtable-port N    port of the Bigtable emulator that npm start starts (default: 8086)
  --pubsub-port N      port of the Pub/Sub emulator that npm start starts (default: 8085)
  --demo               run the demo once everything is up (same as "npm run demo")
  --logs               show every log line of the functions (default: warnings and errors)
  --data DIR           where npm start records what it runs (default: LRO_DATA_DIR, else .lro
                       in the repository)
  --reuse-emulators    use the emulators an earlier, killed npm start left running (and stop
                       them with this run) without asking
  --stop-emulators     stop the emulators an earlier, killed npm start left running and start
                       new ones, without asking
  --fresh              start with an empty table: forget the operations and dead letters saved
                       in the data directory (kept across restarts otherwise)
  -h, --help           this text
`;

class StartError extends Error {
  override readonly name = 'StartError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface Flags {
  apiPort: number;
  subscriberPort: number;
  emulatorPorts: { bigtable: number; pubsub: number };
  demo: boolean;
  logs: boolean;
  dataDir: string;
  fresh: boolean;
  leftEmulators: 'ask' | 'reuse' | 'stop';
}

function parseFlags(
  argv: string[],
  config: Config,
  env: Record<string, string | undefined>,
): Flags | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        'subscriber-port': { type: 'string' },
        'bigtable-port': { type: 'string' },
        'pubsub-port': { type: 'string' },
        demo: { type: 'boolean' },
        logs: { type: 'boolean' },
        data: { type: 'string' },
        'reuse-emulators': { type: 'boolean' },
        'stop-emulators': { type: 'boolean' },
        fresh: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new StartError(`${firstLine(err)}\n${USAGE}`, 2);
  }
  if (values.help) return 'help';
  const port = (value: unknown, option: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (typeof value !== 'string' || !/^\d+$/.test(value) || n < 1 || n > 65535) {
      throw new StartError(`--${option} must be a port number (1-65535)`, 2);
    }
    return n;
  };
  const apiPort = port(values.port, 'port') ?? config.port;
  const subscriberPort = port(values['subscriber-port'], 'subscriber-port') ?? apiPort + 1;
  if (subscriberPort === apiPort) {
    throw new StartError('the API and the subscriber need different ports', 2);
  }
  const emulatorPorts = {
    bigtable: port(values['bigtable-port'], 'bigtable-port') ?? LOCAL_EMULATOR_PORTS.bigtable,
    pubsub: port(values['pubsub-port'], 'pubsub-port') ?? LOCAL_EMULATOR_PORTS.pubsub,
  };
  if (new Set([apiPort, subscriberPort, emulatorPorts.bigtable, emulatorPorts.pubsub]).size < 4) {
    throw new StartError('the API, the subscriber and the two emulators need different ports', 2);
  }
  if (values['reuse-emulators'] && values['stop-emulators']) {
    throw new StartError('--reuse-emulators and --stop-emulators exclude each other', 2);
  }
  if (values.data === '') throw new StartError('--data needs a directory', 2);
  // npm runs scripts in the package's folder; a relative --data is relative to where npm was run.
  const data = typeof values.data === 'string' ? values.data : env.LRO_DATA_DIR || undefined;
  const dataDir =
    data === undefined
      ? resolve(ROOT, '.lro')
      : isAbsolute(data)
        ? data
        : resolve(process.env.INIT_CWD ?? process.cwd(), data);
  return {
    apiPort,
    subscriberPort,
    emulatorPorts,
    demo: values.demo === true,
    logs: values.logs === true,
    dataDir,
    fresh: values.fresh === true,
    leftEmulators: values['reuse-emulators'] ? 'reuse' : values['stop-emulators'] ? 'stop' : 'ask',
  };
}

/**
 * What an earlier run recorded in the data directory and left running. Its functions are stopped
 * (new ones start); its emulators are reused (adopted: stopped with this run) or stopped, as the
 * flags say or, in a terminal, as the user answers; otherwise one line says how to choose.
 * Returns the adopted emulators.
 */
async function handleLeftovers(
  flags: Flags,
  env: Record<string, string | undefined>,
  say: (text: string) => void,
): Promise<RecordedProcess[]> {
  const record = readRunFile(flags.dataDir);
  if (!record) return [];
  const left = await leftovers(record);
  if (record.owner !== process.pid && isAlive(record.owner) && left.length > 0) {
    throw new StartError(
      `another npm start (pid ${record.owner}) is running with ${flags.dataDir}: stop it first (Ctrl-C in its terminal, or kill ${record.owner}), or give this one another --data DIR`,
    );
  }
  if (left.length === 0) {
    removeRunFile(flags.dataDir);
    return [];
  }
  const functions = left.filter((p) => p.role === 'api' || p.role === 'subscriber');
  const emulators = left.filter((p) => p.role === 'bigtable' || p.role === 'pubsub');
  const earlier = `an earlier npm start (pid ${record.owner}, ${record.startedAt}) was killed and left running`;
  let choice = flags.leftEmulators;
  if (emulators.length > 0 && choice === 'ask') {
    const what = `${earlier}: ${left.map(describe).join(', ')}`;
    if (!process.stdin.isTTY) {
      throw new StartError(
        `${what}; run npm start -- --reuse-emulators to use those emulators (this run stops them when it stops), or npm start -- --stop-emulators to stop them and start new ones`,
      );
    }
    say(`npm start: ${what}.`);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      for (;;) {
        const answer = (
          await rl.question(
            'Reuse those emulators (r), stop them and start new ones (s), or quit (q)? [r] ',
          )
        )
          .trim()
          .toLowerCase();
        if (answer === '' || answer === 'r') choice = 'reuse';
        else if (answer === 's') choice = 'stop';
        else if (answer === 'q') throw new StartError('nothing started', 1);
        else continue;
        break;
      }
    } finally {
      rl.close();
    }
  }
  const toStop = choice === 'reuse' ? functions : left;
  if (toStop.length > 0) say(`stopping what ${earlier}: ${toStop.map(describe).join(', ')}`);
  await Promise.all(toStop.map((p) => stopRecorded(p)));
  if (choice !== 'reuse') {
    removeRunFile(flags.dataDir);
    return [];
  }
  const adopted: RecordedProcess[] = [];
  for (const p of emulators) {
    const variable = p.role === 'bigtable' ? 'BIGTABLE_EMULATOR_HOST' : 'PUBSUB_EMULATOR_HOST';
    if (env[variable]) continue; // the variable the user set wins; that emulator stays as it is
    env[variable] = p.address;
    adopted.push(p);
  }
  return adopted;
}

/** Whether nothing listens on the port (on any interface), by binding it for a moment. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function checkPorts(flags: Flags, env: Record<string, string | undefined>): Promise<void> {
  const wanted: [number, string][] = [
    [flags.apiPort, 'the API (choose another with --port N)'],
    [flags.subscriberPort, 'the subscriber (choose another with --subscriber-port N)'],
  ];
  const reuse = 'or point BIGTABLE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST at running emulators';
  if (!env.BIGTABLE_EMULATOR_HOST) {
    wanted.push([
      flags.emulatorPorts.bigtable,
      `the Bigtable emulator (free it, choose another with --bigtable-port N, ${reuse})`,
    ]);
  }
  if (!env.PUBSUB_EMULATOR_HOST) {
    wanted.push([
      flags.emulatorPorts.pubsub,
      `the Pub/Sub emulator (free it, choose another with --pubsub-port N, ${reuse})`,
    ]);
  }
  for (const [port, what] of wanted) {
    if (!(await portIsFree(port)))
      throw new StartError(`port ${port} is already in use; it is for ${what}`);
  }
}

/** The block printed once everything is up; `adopted`: emulators an earlier run left, reused. */
export function readyBlock(
  stack: Stack,
  seconds: number,
  adopted: { bigtable?: boolean; pubsub?: boolean } = {},
  data?: string,
): string {
  const { config, emulators, provisioned } = stack;
  const api = stack.api.url;
  const how = (started: boolean, which: 'bigtable' | 'pubsub') =>
    started
      ? 'started by npm start'
      : adopted[which]
        ? 'left by an earlier npm start, reused (stopped with this one)'
        : 'reused';
  const exportLine = `export BIGTABLE_EMULATOR_HOST=${emulators.bigtable} PUBSUB_EMULATOR_HOST=${emulators.pubsub}`;
  const lines = [
    '',
    `cloud-lro is running (ready in ${seconds.toFixed(1)} s)`,
    '',
    `  API         ${api}   (the operations function)`,
    `  console     ${api}/console/   (open it in a browser)`,
    `  subscriber  ${stack.subscriber.url}   (push endpoint of ${provisioned.eventsSubscription})`,
    '  sweeper     every 2 s in this process   (ends operations past their deadline or heartbeat timeout)',
    `  Bigtable    ${emulators.bigtable}   emulator, ${how(emulators.started.bigtable, 'bigtable')}; instance ${config.bigtable.instance}, table ${config.bigtable.table}`,
    `  Pub/Sub     ${emulators.pubsub}   emulator, ${how(emulators.started.pubsub, 'pubsub')}; project ${config.projectId}`,
    `  topics      ${config.topics.events} (workers publish here), ${config.topics.notifications}, ${config.topics.wakeups}, ${config.topics.deadLetter}`,
    ...(data ? [`  data        ${data}`] : []),
    '',
    'Try it (in another terminal):',
    `  curl -s -X POST ${api}/v1/operations -H 'content-type: application/json' -d '{"operationId":"hello"}'`,
    `  npx lro get hello --url ${api}`,
    `  npx lro list --url ${api}`,
    `  npm run demo${api === 'http://127.0.0.1:8080' ? '' : ` -- --url ${api}`}   (a worker reporting progress; success, failure, cancellation)`,
    '',
    'Workers and the demo in other terminals need the emulators:',
    `  ${exportLine}`,
    '',
    'Ctrl-C stops what this started (so does closing this terminal).',
    '',
  ];
  return lines.join('\n');
}

/** Function output: every line with --logs, otherwise warnings, errors and non-JSON lines. */
function outputFilter(showAll: boolean, write: (line: string) => void) {
  const partial = new Map<string, string>();
  return (source: string, chunk: string) => {
    if (source !== 'api' && source !== 'subscriber' && source !== 'sweeper') return; // the emulators' chatter
    const text = (partial.get(source) ?? '') + chunk;
    const lines = text.split('\n');
    partial.set(source, lines.pop() ?? '');
    for (const line of lines) {
      if (line.trim() === '') continue;
      if (showAll || isNoteworthy(line)) write(`[${source}] ${line}`);
    }
  };
}

function isNoteworthy(line: string): boolean {
  // Plain lines are the framework's banner and stack traces that repeat a logged entry; the
  // last lines are shown anyway if a function exits.
  if (!line.startsWith('{')) return false;
  try {
    const entry = JSON.parse(line) as { severity?: unknown };
    return (
      entry.severity === 'WARNING' || entry.severity === 'ERROR' || entry.severity === 'CRITICAL'
    );
  } catch {
    return true;
  }
}

/**
 * The Google client libraries probe for a metadata server and warn when there is none, which is
 * always the case on a developer's machine; other warnings are printed as usual.
 */
function quietMetadataWarning(): void {
  const defaults = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'MetadataLookupWarning') return;
    for (const listener of defaults) listener(warning);
  });
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  // A closed terminal makes writes fail (EIO, EPIPE): what is said then is lost, the stop goes on.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  const say = (text: string) => process.stdout.write(`${text}\n`);
  const complain = (text: string) => process.stderr.write(`npm start: ${text}\n`);
  let stack: Stack | undefined;
  let dataDir: string | undefined;
  let adopted: RecordedProcess[] = [];
  let record: RunRecord | undefined;
  // Whether this run's Bigtable emulator (started or adopted) holds the data to keep on stop.
  let keepsData = false;
  let saver: NodeJS.Timeout | undefined;
  let saving: Promise<unknown> = Promise.resolve();
  let starting: Promise<Stack> | undefined;
  let stopping = false;
  let exitCode = 0;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });

  const stop = async (code: number, reason?: string) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    if (reason) complain(reason);
    say('stopping...');
    try {
      const running = stack ?? (await starting?.catch(() => undefined));
      clearInterval(saver);
      if (running && dataDir && keepsData) {
        await saving;
        try {
          await saveTable(running.config, dataDir);
        } catch (err) {
          complain(`could not save the local data to ${dataFilePath(dataDir)}: ${firstLine(err)}`);
        }
      }
      await running?.stop();
      await Promise.all(adopted.map((p) => stopRecorded(p)));
      if (dataDir && record) removeRunFile(dataDir);
    } finally {
      resolveDone(exitCode);
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      complain(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    void stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    let config: Config;
    try {
      config = loadConfig(env);
    } catch (err) {
      throw new StartError(firstLine(err), 2);
    }
    const flags = parseFlags(argv, config, env);
    if (flags === 'help') {
      say(USAGE);
      return 0;
    }
    const started = Date.now();
    env = { ...env };
    adopted = await handleLeftovers(flags, env, say);
    if (stopping) return await done;
    await checkPorts(flags, env);
    dataDir = flags.dataDir;
    const running: RunRecord = {
      owner: process.pid,
      startedAt: new Date().toISOString(),
      processes: [...adopted],
    };
    record = running;
    const saveRecord = () => {
      try {
        writeRunFile(flags.dataDir, running);
      } catch (err) {
        throw new StartError(`cannot write ${runFilePath(flags.dataDir)}: ${firstLine(err)}`);
      }
    };
    saveRecord();
    starting = startStack({
      // Nothing here runs on Google Cloud: skip the client libraries' metadata server probe.
      env: { METADATA_SERVER_DETECTION: 'none', ...env },
      apiPort: flags.apiPort,
      subscriberPort: flags.subscriberPort,
      emulatorPorts: flags.emulatorPorts,
      onOutput: outputFilter(flags.logs, (line) => process.stderr.write(`${line}\n`)),
      onProcess: (role, pid, address) => {
        running.processes.push({ role, pid, address });
        saveRecord();
      },
    });
    stack = await starting;
    if (stopping) return await done;
    const adoptedBigtable = adopted.some((p) => p.role === 'bigtable');
    keepsData = stack.emulators.started.bigtable || adoptedBigtable;
    let dataLine: string | undefined;
    if (keepsData) {
      const file = dataFilePath(flags.dataDir);
      if (flags.fresh) removeSavedData(flags.dataDir);
      let restored: number | undefined;
      if (stack.emulators.started.bigtable && !flags.fresh) {
        try {
          restored = await loadTable(stack.config, flags.dataDir);
        } catch (err) {
          throw new StartError(
            `could not load ${file}: ${firstLine(err)} (npm start -- --fresh starts without it)`,
          );
        }
      }
      dataLine = `${file}${restored === undefined ? '' : `, ${restored} rows restored`}; saved every ${SAVE_INTERVAL_MS / 1000} s and on stop (--fresh starts empty)`;
      const running = stack;
      saver = setInterval(() => {
        saving = saving.then(() => saveTable(running.config, flags.dataDir)).catch(() => {});
      }, SAVE_INTERVAL_MS);
      saver.unref();
    }
    if (stopping) return await done;
    say(
      readyBlock(
        stack,
        (Date.now() - started) / 1000,
        {
          bigtable: adopted.some((p) => p.role === 'bigtable'),
          pubsub: adopted.some((p) => p.role === 'pubsub'),
        },
        dataLine,
      ),
    );
    for (const fn of [stack.api, stack.subscriber]) {
      fn.process.once('exit', (code, signal) => {
        // A terminal's Ctrl-C reaches the functions too; give our own handler a moment.
        setTimeout(() => {
          if (stopping) return;
          const tail = fn.output().trim().split('\n').slice(-5).join('\n');
          if (tail) process.stderr.write(`${tail}\n`);
          void stop(1, `the ${fn.target} function exited (${signal ?? `code ${code}`})`);
        }, 300);
      });
    }
    if (flags.demo) {
      const demoStack = stack;
      void runDemo({ apiUrl: demoStack.api.url, config: demoStack.config, write: say }).catch(
        (err: unknown) => {
          if (!stopping) complain(`demo failed: ${firstLine(err)}`);
        },
      );
    }
    return await done;
  } catch (err) {
    if (stopping) return await done;
    stopping = true;
    clearInterval(saver);
    await stack?.stop();
    // What the failed start had started is stopped; emulators it adopted stay recorded (and
    // running) for the next run to offer again.
    if (dataDir && record) {
      if (adopted.length > 0) writeRunFile(dataDir, { ...record, processes: adopted });
      else removeRunFile(dataDir);
    }
    const code = err instanceof StartError ? err.exitCode : 1;
    const message =
      err instanceof StartError || err instanceof EmulatorError ? err.message : firstLine(err);
    if (code === 2 && err instanceof StartError && err.message.includes('Usage:')) {
      process.stderr.write(`npm start: ${err.message}`);
    } else {
      complain(message);
    }
    return code;
  }
}

quietMetadataWarning();
const code = await main(process.argv.slice(2), process.env);
process.exit(code);
