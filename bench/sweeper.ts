/**
 * What the sweeper costs (docs/contracts.md, contract 5), on the Bigtable emulator:
 *
 * - One sweep over 10,000 running operations of which 100 are overdue: the rows it reads against
 *   the 100 it ends (target: at most 2 rows per ended operation plus a constant), its duration,
 *   and, as the baseline measured in the same run, reading every running operation (what a
 *   sweeper without the due-time index would do).
 * - Heartbeats: the latency of one heartbeat write (one CheckAndMutateRow of one cell) and the
 *   reads it needed, and the writes per running operation per minute at the worker SDK's
 *   default interval.
 *
 * It uses its own row-key prefix, so that no other sweeper of the same table touches its rows.
 * `npm run bench` runs it with the rest; `node dist/bench/sweeper.js` alone (it starts the
 * emulators unless BIGTABLE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST point at running ones).
 */
import { pathToFileURL } from 'node:url';
import { startEmulators } from '../shared/local/emulators.js';
import { defaults } from '../shared/sdk/defaults.js';
import { createLogger } from '../shared/sdk/log.js';
import { Messaging } from '../shared/sdk/messaging.js';
import { type Config, loadConfig } from '../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../shared/service/store/bigtable/operation-store.js';
import { sweep } from '../shared/service/sweeper/sweeper.js';
import { roundSummary } from './stages.js';
import { round, summarize } from './stats.js';

const RUNNING = 10_000;
const OVERDUE = 100;
const HEARTBEATS = 1_000;

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export async function measureSweeper(base: Config, say: (line: string) => void = () => {}) {
  const config = loadConfig({
    GOOGLE_CLOUD_PROJECT: base.projectId,
    LRO_BIGTABLE_INSTANCE: base.bigtable.instance,
    LRO_BIGTABLE_TABLE: base.bigtable.table,
    LRO_ROW_KEY_PREFIX: `sweep-bench-${Date.now().toString(36)}/`,
    LRO_NOTIFICATIONS_TOPIC: base.topics.notifications,
    ...(base.bigtable.emulatorHost ? { BIGTABLE_EMULATOR_HOST: base.bigtable.emulatorHost } : {}),
    ...(base.pubsubEmulatorHost ? { PUBSUB_EMULATOR_HOST: base.pubsubEmulatorHost } : {}),
  });
  await ensureTable(config);
  const store = createStore(config);
  const messaging = new Messaging(config);
  await messaging.ensureTopic(config.topics.notifications);
  try {
    say(`sweeper: creating ${RUNNING} running operations, ${OVERDUE} of them overdue…`);
    const created = Date.now();
    const ids = Array.from({ length: RUNNING }, (_, i) => i);
    await pool(ids, 64, async (i) => {
      await store.create({
        id: `op-${i}`,
        heartbeatTimeoutMs: i < OVERDUE ? 1_000 : 3_600_000,
      });
    });
    const deps = {
      store,
      messaging,
      topics: { notifications: config.topics.notifications },
      now: () => created + 120_000,
      log: createLogger({}, (line) => process.stderr.write(`${line}\n`), 'WARNING'),
    };
    const sweepStarted = performance.now();
    const report = await sweep(deps);
    const sweepMs = performance.now() - sweepStarted;
    // Baseline: reading every running operation once, as a scan would.
    const scanStarted = performance.now();
    let scanned = 0;
    let pageToken = '';
    do {
      const page = await store.list({ filter: 'done = false', pageSize: 1000, pageToken });
      scanned += page.operations.length;
      pageToken = page.nextPageToken;
    } while (pageToken);
    const scanMs = performance.now() - scanStarted;

    say(`sweeper: ${HEARTBEATS} heartbeats…`);
    const latencies: number[] = [];
    let reads = 0;
    const beats = Array.from({ length: HEARTBEATS }, (_, i) => `operations/op-${OVERDUE + i}`);
    await pool(beats, 16, async (name) => {
      const started = performance.now();
      const result = await store.heartbeat(name, { time: new Date() });
      latencies.push(performance.now() - started);
      if (!result.applied) reads++;
    });
    const perMinute = 60_000 / defaults.heartbeatIntervalMs;
    return {
      runningOperations: RUNNING,
      overdue: OVERDUE,
      sweep: {
        ended: report.ended,
        rowsRead: report.rowsRead,
        rowsReadPerEnded: round(report.rowsRead / Math.max(1, report.ended), 2),
        durationMs: round(sweepMs, 0),
      },
      scanBaseline: {
        rowsRead: scanned,
        durationMs: round(scanMs, 0),
        rowsReadOverSweep: round(scanned / Math.max(1, report.rowsRead), 1),
      },
      heartbeat: {
        writeMs: roundSummary(summarize(latencies)),
        readsPerHeartbeat: round(reads / HEARTBEATS, 3),
        conditionalWritesPerHeartbeat: 1,
        writesPerOperationPerMinute: perMinute,
        intervalMs: defaults.heartbeatIntervalMs,
      },
    };
  } finally {
    await store.close();
    await messaging.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const emulators = await startEmulators();
  const config = loadConfig({
    LRO_BIGTABLE_TABLE: `sweep-bench-${Date.now().toString(36)}`,
    LRO_NOTIFICATIONS_TOPIC: `sweep-bench-${Date.now().toString(36)}`,
    BIGTABLE_EMULATOR_HOST: emulators.bigtable,
    PUBSUB_EMULATOR_HOST: emulators.pubsub,
  });
  try {
    const figures = await measureSweeper(config, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await deleteTable(config).catch(() => undefined);
    await emulators.stop();
  }
  process.exit(0);
}
