/**
 * `npm start`: the whole system on this machine (scripts/stack.ts), one block saying what runs
 * where and how to try it, and an orderly stop on Ctrl-C (SIGINT) or SIGTERM that ends exactly
 * what this process started. Failures to start are one line on stderr and a non-zero exit.
 *
 *   node dist/scripts/start.js [--port N] [--subscriber-port N] [--demo] [--logs]
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { EmulatorError } from '../shared/local/emulators.js';
import { type Config, loadConfig } from '../shared/service/config.js';
import { runDemo } from './demo.js';
import { type Stack, startStack } from './stack.js';

/** Where `npm start` runs the emulators when it starts them: the gcloud emulators' own defaults. */
export const LOCAL_EMULATOR_PORTS = { bigtable: 8086, pubsub: 8085 } as const;

const USAGE = `Usage: npm start -- [--port N] [--subscriber-port N] [--bigtable-port N] [--pubsub-port N] [--demo] [--logs]
  --port N             port of the operations API (default: PORT, else 8080)
  --subscriber-port N  port of the subscriber function (default: the API port + 1)
  --bigtable-port N    port of the Bigtable emulator that npm start starts (default: 8086)
  --pubsub-port N      port of the Pub/Sub emulator that npm start starts (default: 8085)
  --demo               run the demo once everything is up (same as "npm run demo")
  --logs               show every log line of the functions (default: warnings and errors)
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
}

function parseFlags(argv: string[], config: Config): Flags | 'help' {
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
  return {
    apiPort,
    subscriberPort,
    emulatorPorts,
    demo: values.demo === true,
    logs: values.logs === true,
  };
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

/** The block printed once everything is up. */
export function readyBlock(stack: Stack, seconds: number): string {
  const { config, emulators, provisioned } = stack;
  const api = stack.api.url;
  const how = (started: boolean) => (started ? 'started by npm start' : 'reused');
  const exportLine = `export BIGTABLE_EMULATOR_HOST=${emulators.bigtable} PUBSUB_EMULATOR_HOST=${emulators.pubsub}`;
  const lines = [
    '',
    `cloud-lro is running (ready in ${seconds.toFixed(1)} s)`,
    '',
    `  API         ${api}   (the operations function)`,
    `  console     ${api}/console/   (open it in a browser)`,
    `  subscriber  ${stack.subscriber.url}   (push endpoint of ${provisioned.eventsSubscription})`,
    '  sweeper     every 2 s in this process   (ends operations past their deadline or heartbeat timeout)',
    `  Bigtable    ${emulators.bigtable}   emulator, ${how(emulators.started.bigtable)}; instance ${config.bigtable.instance}, table ${config.bigtable.table}`,
    `  Pub/Sub     ${emulators.pubsub}   emulator, ${how(emulators.started.pubsub)}; project ${config.projectId}`,
    `  topics      ${config.topics.events} (workers publish here), ${config.topics.notifications}, ${config.topics.wakeups}, ${config.topics.deadLetter}`,
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
    'Ctrl-C stops what this started.',
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
  const say = (text: string) => process.stdout.write(`${text}\n`);
  const complain = (text: string) => process.stderr.write(`npm start: ${text}\n`);
  let stack: Stack | undefined;
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
      await running?.stop();
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

  try {
    let config: Config;
    try {
      config = loadConfig(env);
    } catch (err) {
      throw new StartError(firstLine(err), 2);
    }
    const flags = parseFlags(argv, config);
    if (flags === 'help') {
      say(USAGE);
      return 0;
    }
    await checkPorts(flags, env);
    const started = Date.now();
    starting = startStack({
      // Nothing here runs on Google Cloud: skip the client libraries' metadata server probe.
      env: { METADATA_SERVER_DETECTION: 'none', ...env },
      apiPort: flags.apiPort,
      subscriberPort: flags.subscriberPort,
      emulatorPorts: flags.emulatorPorts,
      onOutput: outputFilter(flags.logs, (line) => process.stderr.write(`${line}\n`)),
    });
    stack = await starting;
    if (stopping) return await done;
    say(readyBlock(stack, (Date.now() - started) / 1000));
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
