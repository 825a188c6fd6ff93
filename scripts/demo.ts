/**
 * `npm run demo`: a worker and a caller against a running stack (`npm start`), so that every
 * state of an operation can be seen once. It creates an export with three child steps, an import
 * and a reindex; workers report their progress through the worker SDK (events topic, subscriber,
 * Bigtable) over a few seconds; the export succeeds, the import fails, and the reindex is
 * cancelled through the API, which its worker sees on its AbortSignal and reports as CANCELLED.
 * A backup is created with a 10 s heartbeat timeout; its worker sends heartbeats every second,
 * then dies half-way (it stops without a result, as a killed process would), and the sweeper
 * ends the backup with DEADLINE_EXCEEDED.
 * While it runs, the caller's view (read through the API) is printed whenever it changes.
 *
 *   node dist/scripts/demo.js [--url http://127.0.0.1:8080] [--step-ms 400]
 *
 * The worker publishes to the Pub/Sub emulator named by PUBSUB_EMULATOR_HOST, by default the one
 * `npm start` starts (127.0.0.1:8085), with the topic names of the configuration.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatList } from '../bin/format.js';
import { OperationsClient, waitForOperations } from '../shared/sdk/client.js';
import { Code } from '../shared/sdk/errors.js';
import { createLogger } from '../shared/sdk/log.js';
import { Messaging } from '../shared/sdk/messaging.js';
import type { Any, Operation } from '../shared/sdk/model.js';
import { renderProgressLine } from '../shared/sdk/progress.js';
import { OperationReporter } from '../shared/sdk/reporter.js';
import { type Config, loadConfig } from '../shared/service/runtime/config.js';
import { checkDemoCanRun, DemoCheckError } from './demo-checks.js';

const PROGRESS = 'type.googleapis.com/lro.demo.Progress';

export interface DemoOptions {
  /** Base URL of the operations API. */
  apiUrl: string;
  /** Pub/Sub endpoint and topics of the stack. */
  config: Pick<Config, 'projectId' | 'pubsubEmulatorHost' | 'topics'>;
  /** Where the demo's lines go. */
  write: (line: string) => void;
  /** Pause between two progress reports (default 400 ms). */
  stepMs?: number;
  /** A prefix for the operation IDs (default: `demo-` and a timestamp, so that runs differ). */
  idPrefix?: string;
}

export interface DemoResult {
  /** The final state of each operation, by role. */
  export: Operation;
  steps: Operation[];
  import: Operation;
  reindex: Operation;
  backup: Operation;
}

const progress = (percent: number, message: string): Any => ({
  '@type': PROGRESS,
  percent,
  message,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The deadline of the demo's operations: far longer than the demo, short enough to clean up. */
const DEMO_DEADLINE_MS = 5 * 60_000;

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { write } = options;
  const stepMs = options.stepMs ?? 400;
  const prefix = options.idPrefix ?? `demo-${Date.now().toString(36)}`;
  const client = new OperationsClient({ baseUrl: options.apiUrl });
  const messaging = new Messaging(options.config);
  // The worker SDK logs in JSON for Cloud Logging; here only its errors matter.
  const log = createLogger({}, (line) => process.stderr.write(`${line}\n`), 'ERROR');
  const reporters: OperationReporter[] = [];
  const open = async (operation: string) => {
    const reporter = await OperationReporter.open({
      operation,
      messaging,
      topics: {
        events: options.config.topics.events,
        notifications: options.config.topics.notifications,
      },
      log,
    });
    reporters.push(reporter);
    return reporter;
  };

  // Every operation of the demo carries a deadline: should the demo stop half-way (Ctrl-C, a
  // lost connection), the sweeper ends what it left running, as it would for a dead worker.
  const deadline = new Date(Date.now() + DEMO_DEADLINE_MS);
  try {
    // The caller's side: create the operations through the API.
    const exportOp = await client.create({
      operationId: `${prefix}-export`,
      metadata: progress(0, 'queued'),
      deadline,
    });
    const stepNames = ['extract', 'transform', 'load'];
    const steps: Operation[] = [];
    for (const step of stepNames) {
      steps.push(
        await client.create({
          operationId: `${prefix}-${step}`,
          parent: exportOp.name,
          metadata: progress(0, 'queued'),
          deadline,
        }),
      );
    }
    const importOp = await client.create({
      operationId: `${prefix}-import`,
      metadata: progress(0, 'queued'),
      deadline,
    });
    const reindexOp = await client.create({
      operationId: `${prefix}-reindex`,
      metadata: progress(0, 'queued'),
      deadline,
    });
    const backupOp = await client.create({
      operationId: `${prefix}-backup`,
      metadata: progress(0, 'queued'),
      heartbeatTimeout: '10s',
      deadline,
    });
    const urlFlag = options.apiUrl === 'http://127.0.0.1:8080' ? '' : ` --url ${options.apiUrl}`;
    const all = [exportOp, ...steps, importOp, reindexOp, backupOp];
    const labels = new Map(
      all.map((op) => [op.name, op.name.slice(`operations/${prefix}-`.length)]),
    );
    write('');
    write(`demo: created ${all.length} operations (${exportOp.name} has ${steps.length} children)`);
    write(`demo: follow one in another terminal: npx lro watch ${reindexOp.name}${urlFlag}`);
    write('');

    // Workers open their reporters before they start, so that no cancellation is missed.
    const exportReporter = await open(exportOp.name);
    const stepReporters = await Promise.all(steps.map((op) => open(op.name)));
    const importReporter = await open(importOp.name);
    const reindexReporter = await open(reindexOp.name);

    const view = watchStates(client, all, labels, write);

    const exportWorker = async () => {
      let rows = 0;
      for (const [i, reporter] of stepReporters.entries()) {
        const step = stepNames[i] as string;
        for (const percent of [25, 50, 75]) {
          await reporter.progress(progress(percent, `${step}: ${percent}%`));
          await exportReporter.progress(
            progress(Math.round(((i + percent / 100) / stepReporters.length) * 100), step),
          );
          await sleep(stepMs);
        }
        rows += 1000 * (i + 1);
        await reporter.succeed(
          { '@type': 'type.googleapis.com/lro.demo.StepResult', rows: 1000 * (i + 1) },
          { metadata: progress(100, `${step}: done`) },
        );
      }
      await exportReporter.succeed(
        {
          '@type': 'type.googleapis.com/lro.demo.ExportResult',
          uri: 'gs://demo-bucket/export.csv',
          rows,
        },
        { metadata: progress(100, 'exported') },
      );
    };

    const importWorker = async () => {
      for (const percent of [10, 20, 30, 40, 50, 60]) {
        await importReporter.progress(progress(percent, `importing rows (${percent}%)`));
        await sleep(stepMs);
      }
      await importReporter.fail({
        code: Code.INVALID_ARGUMENT,
        message: 'row 1207: expected 12 columns, found 11',
      });
    };

    const reindexWorker = async () => {
      const signal = reindexReporter.signal;
      for (let percent = 10; percent <= 90 && !signal.aborted; percent += 10) {
        await reindexReporter.progress(progress(percent, `reindexing (${percent}%)`));
        await sleep(stepMs);
      }
      // Nearly done: wait for the cancellation (it comes after 3 steps) rather than finish.
      if (!signal.aborted) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error('the cancellation never arrived')),
            20_000,
          );
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      await reindexReporter.cancelled('stopped after a cancellation request');
    };

    const caller = async () => {
      await sleep(stepMs * 3.5);
      write(`demo: cancelling ${reindexOp.name} (POST :cancel, as a caller would)`);
      await client.cancel(reindexOp.name);
    };

    const backupWorker = async () => {
      // Heartbeats every second (the SDK's default is 15 s, for timeouts of a minute or more).
      const reporter = await OperationReporter.open({
        operation: backupOp.name,
        messaging,
        topics: { events: options.config.topics.events, notifications: false },
        heartbeatIntervalMs: 1_000,
        log,
      });
      for (const percent of [10, 20, 30, 40]) {
        await reporter.progress(progress(percent, `backing up (${percent}%)`));
        await sleep(stepMs);
      }
      write('demo: the backup worker dies half-way (no result, no more heartbeats)');
      await reporter.close();
    };

    await Promise.all([exportWorker(), importWorker(), reindexWorker(), backupWorker(), caller()]);
    const final = await waitForOperations(
      client,
      all.map((op) => op.name),
      { timeout: 30_000 },
    );
    await view.stop(final);

    write('');
    write('demo: finished; every state once:');
    write(indent(formatList(final)));
    write('');
    write('look closer:');
    write(`  npx lro tree ${exportOp.name}${urlFlag}`);
    write(`  npx lro get ${importOp.name}${urlFlag}`);
    write(`  npx lro list --filter "done = true"${urlFlag}`);
    write('');
    const byName = new Map(final.map((op) => [op.name, op]));
    const pick = (op: Operation) => byName.get(op.name) ?? op;
    return {
      export: pick(exportOp),
      steps: steps.map(pick),
      import: pick(importOp),
      reindex: pick(reindexOp),
      backup: pick(backupOp),
    };
  } finally {
    await Promise.allSettled(reporters.map((r) => r.close()));
    await messaging.close();
  }
}

/**
 * The caller's view: reads every operation through the API a few times a second and prints a
 * line for each one whose progress or state changed.
 */
function watchStates(
  client: OperationsClient,
  operations: Operation[],
  labels: Map<string, string>,
  write: (line: string) => void,
) {
  const width = Math.max(...[...labels.values()].map((l) => l.length));
  const shown = new Map<string, string>();
  const show = (op: Operation) => {
    const line = `  ${(labels.get(op.name) ?? op.name).padEnd(width)}  ${renderProgressLine(op, { width: 20 })}`;
    if (shown.get(op.name) === line) return;
    shown.set(op.name, line);
    write(line);
  };
  operations.forEach(show);
  let running = true;
  const loop = (async () => {
    while (running) {
      await sleep(250);
      const states = await Promise.allSettled(operations.map((op) => client.get(op.name)));
      for (const state of states) if (state.status === 'fulfilled') show(state.value);
    }
  })();
  return {
    async stop(final: Operation[]) {
      running = false;
      await loop;
      final.forEach(show);
    },
  };
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

const DEMO_USAGE = `Usage: npm run demo -- [--url URL] [--step-ms N]
  Creates an export with three child steps, an import, a reindex and a backup on a running stack
  (npm start) and drives them through every state with workers reporting through Pub/Sub.
  --url URL     the API (default: LRO_API_URL, else http://127.0.0.1:8080)
  --step-ms N   milliseconds between a worker's steps (default 400)
  PUBSUB_EMULATOR_HOST names the Pub/Sub emulator (default 127.0.0.1:8085, where npm start puts it).
`;

async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  let values: {
    url?: string | undefined;
    'step-ms'?: string | undefined;
    help?: boolean | undefined;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        'step-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(
      `demo: ${err instanceof Error ? err.message : String(err)}\n${DEMO_USAGE}`,
    );
    return 2;
  }
  if (values.help) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const apiUrl = (values.url ?? env.LRO_API_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  // The emulator that `npm start` starts, unless the environment names another.
  const config = loadConfig({ PUBSUB_EMULATOR_HOST: '127.0.0.1:8085', ...env });
  const stepMs = values['step-ms'] === undefined ? undefined : Number(values['step-ms']);
  try {
    // Before creating anything: nothing is left running when the stack is not where we look.
    await checkDemoCanRun({ apiUrl, config, pubsubHostFromEnv: Boolean(env.PUBSUB_EMULATOR_HOST) });
  } catch (err) {
    if (!(err instanceof DemoCheckError)) throw err;
    process.stderr.write(`demo: ${err.message}\n`);
    return 1;
  }
  await runDemo({
    apiUrl,
    config,
    write: (line) => process.stdout.write(`${line}\n`),
    ...(stepMs !== undefined && Number.isFinite(stepMs) ? { stepMs } : {}),
  });
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const defaults = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    // The client libraries' probe for a metadata server, absent on a developer's machine.
    if (warning.name !== 'MetadataLookupWarning')
      for (const listener of defaults) listener(warning);
  });
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
