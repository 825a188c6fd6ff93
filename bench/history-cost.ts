/**
 * `npm run bench:history`: what the event history costs per event. Each kind of event (applied
 * progress, heartbeat, applied completion, stale progress, a duplicate, an event after the end) is
 * handled by the subscriber's own code (`handleEventMessage`) twice in the same run, interleaved:
 * with the store as it is, and with the same store with the history switched off (its entries
 * dropped before the write, its extra reads and writes skipped). For each kind it prints the
 * Bigtable requests and mutations per event, the bytes the history adds, and the median handling
 * time of both, as a ratio. Needs the emulators (started here unless BIGTABLE_EMULATOR_HOST and
 * PUBSUB_EMULATOR_HOST name running ones).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { answerHelp } from '../scripts/usage.js';
import { startEmulators } from '../shared/local/emulators.js';
import { createLogger } from '../shared/sdk/log.js';
import { Messaging } from '../shared/sdk/messaging.js';
import { handleEventMessage } from '../shared/service/events/subscriber.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import {
  BigtableOperationStore,
  deleteTable,
  ensureTable,
} from '../shared/service/store/bigtable/operation-store.js';
import type { HistoryEntry } from '../shared/service/store/event-history.js';
import type { OperationStore } from '../shared/service/store/store.js';
import { round, summarize } from './stats.js';

answerHelp(`Usage: npm run bench:history
  Measures what the event history costs per event (Bigtable requests, bytes and time of each kind
  of event, history on and off in the same run). BENCH_SCALE=F scales the events.`);

const N = Math.max(20, Math.round(200 * Number(process.env.BENCH_SCALE ?? 1)));
const say = (text: string) => process.stderr.write(`${text}\n`);
const silent = createLogger({}, () => undefined, 'ERROR');

/** Bigtable requests, mutations and history bytes seen by the instrumented table. */
interface Counts {
  requests: number;
  mutations: number;
  historyBytes: number;
}

/** Counts the requests the store makes through its table (a bench-only look inside). */
function instrument(store: BigtableOperationStore, counts: Counts): void {
  const table = (store as unknown as { table: Record<string, unknown> }).table;
  const countMutations = (list: unknown) => {
    for (const m of Array.isArray(list) ? list : [list]) {
      counts.mutations++;
      const history = (m as { data?: { h?: Record<string, { value: string }> } }).data?.h;
      for (const cell of Object.values(history ?? {})) counts.historyBytes += cell.value.length;
    }
  };
  const getRows = (table.getRows as (...a: unknown[]) => Promise<unknown>).bind(table);
  table.getRows = (...args: unknown[]) => {
    counts.requests++;
    return getRows(...args);
  };
  const mutate = (table.mutate as (...a: unknown[]) => Promise<unknown>).bind(table);
  table.mutate = (entries: unknown, ...rest: unknown[]) => {
    counts.requests++;
    countMutations(entries);
    return mutate(entries, ...rest);
  };
  const row = (table.row as (key: string) => Record<string, unknown>).bind(table);
  table.row = (key: string) => {
    const r = row(key);
    const filter = (r.filter as (...a: unknown[]) => Promise<unknown>).bind(r);
    r.filter = (predicate: unknown, config: { onMatch?: unknown[]; onNoMatch?: unknown[] }) => {
      counts.requests++;
      countMutations([...(config.onMatch ?? []), ...(config.onNoMatch ?? [])]);
      return filter(predicate, config);
    };
    return r;
  };
}

/** The same store with the event history switched off. */
function withoutHistory(store: OperationStore): OperationStore {
  const strip = <T extends { history?: HistoryEntry }>(options: T): T => {
    const { history: _, ...rest } = options;
    return rest as T;
  };
  return new Proxy(store, {
    get(target, property) {
      if (property === 'updateMetadata') {
        return (name: string, metadata: never, options: { history?: HistoryEntry }) =>
          target.updateMetadata(name, metadata, strip(options as never));
      }
      if (property === 'complete') {
        return (name: string, outcome: never, options: { history?: HistoryEntry } = {}) =>
          target.complete(name, outcome, strip(options));
      }
      if (property === 'heartbeat') {
        return (name: string, options: { time: Date; history?: HistoryEntry }) =>
          target.heartbeat(name, strip(options));
      }
      if (property === 'recordHistory') return async () => undefined;
      if (property === 'history') {
        return async (name: string) => ({ name, events: [] });
      }
      const value = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

type Kind = 'progress' | 'heartbeat' | 'completion' | 'stale' | 'duplicate' | 'after end';

async function main() {
  const emulators = await startEmulators();
  const suffix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const env = {
    LRO_BIGTABLE_TABLE: `history-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `history-notifications-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `history-dead-letter-${suffix}`,
    BIGTABLE_EMULATOR_HOST: emulators.bigtable,
    PUBSUB_EMULATOR_HOST: emulators.pubsub,
  };
  const config = loadConfig(env);
  await ensureTable(config);
  const messaging = new Messaging(config);
  await messaging.ensureTopic(config.topics.notifications);
  const counts = { on: emptyCounts(), off: emptyCounts() };
  const stores = {
    on: new BigtableOperationStore(config),
    off: new BigtableOperationStore(config),
  };
  instrument(stores.on, counts.on);
  instrument(stores.off, counts.off);
  const variants = { on: stores.on as OperationStore, off: withoutHistory(stores.off) };
  const topics = {
    notifications: config.topics.notifications,
    deadLetter: config.topics.deadLetter,
  };
  const results: Record<Kind, Record<'on' | 'off', { ms: number[]; counts: Counts }>> = {} as never;

  const progress = (percent: number) => ({ '@type': 'type.googleapis.com/bench.P', percent });
  const message = (body: Record<string, unknown>) => ({
    data: Buffer.from(JSON.stringify(body)),
    attributes: { operation: String(body.operation), type: String(body.type) },
    messageId: randomUUID(),
    publishTime: new Date().toISOString(),
  });

  try {
    say(`history cost: ${N} operations per variant, each kind of event once per operation…`);
    const ops: Record<'on' | 'off', string[]> = { on: [], off: [] };
    for (const variant of ['on', 'off'] as const) {
      for (let i = 0; i < N; i++) {
        ops[variant].push((await stores.on.create({ metadata: progress(0) })).operation.name);
      }
    }
    const firstIds: Record<'on' | 'off', string[]> = { on: [], off: [] };
    const send = async (kind: Kind, variant: 'on' | 'off', i: number) => {
      const name = ops[variant][i] as string;
      const now = Date.now();
      let body: Record<string, unknown>;
      switch (kind) {
        case 'progress': {
          const eventId = randomUUID();
          firstIds[variant][i] = eventId;
          body = {
            type: 'metadata',
            eventId,
            metadata: progress(50),
            emitTime: new Date(now).toISOString(),
          };
          break;
        }
        case 'heartbeat':
          body = {
            type: 'heartbeat',
            eventId: randomUUID(),
            emitTime: new Date(now).toISOString(),
          };
          break;
        case 'stale':
          body = {
            type: 'metadata',
            eventId: randomUUID(),
            metadata: progress(10),
            emitTime: new Date(now - 600_000).toISOString(),
          };
          break;
        case 'duplicate':
          // The first progress event again, once newer progress is stored: a duplicate by eventId.
          body = {
            type: 'metadata',
            eventId: firstIds[variant][i],
            metadata: progress(50),
            emitTime: new Date(now - 300_000).toISOString(),
          };
          break;
        case 'completion':
          body = {
            type: 'succeeded',
            eventId: randomUUID(),
            emitTime: new Date(now).toISOString(),
          };
          break;
        case 'after end':
          body = {
            type: 'failed',
            eventId: randomUUID(),
            error: { code: 13, message: 'late' },
            emitTime: new Date(now).toISOString(),
          };
          break;
      }
      const entry = results[kind][variant];
      const before = { ...counts[variant] };
      const started = performance.now();
      await handleEventMessage(message({ operation: name, ...body }), {
        store: variants[variant],
        messaging,
        topics,
        log: silent,
      });
      entry.ms.push(performance.now() - started);
      entry.counts.requests += counts[variant].requests - before.requests;
      entry.counts.mutations += counts[variant].mutations - before.mutations;
      entry.counts.historyBytes += counts[variant].historyBytes - before.historyBytes;
    };
    const kinds: Kind[] = [
      'progress',
      'heartbeat',
      'stale',
      'duplicate',
      'completion',
      'after end',
    ];
    for (const kind of kinds) {
      results[kind] = {
        on: { ms: [], counts: emptyCounts() },
        off: { ms: [], counts: emptyCounts() },
      };
      // Before the duplicate: newer progress, so that the resent first event is not the stored state.
      if (kind === 'duplicate') {
        for (const variant of ['on', 'off'] as const) {
          for (const name of ops[variant]) {
            await stores.on.updateMetadata(name, progress(60), {
              emitTime: new Date(),
              eventId: randomUUID(),
            });
          }
        }
      }
      for (let i = 0; i < N; i++) {
        // Interleaved, alternating which goes first, so that drift of a loaded machine evens out.
        const order = i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
        for (const variant of order) await send(kind, variant, i);
      }
    }

    const lines = [
      '| event | Bigtable requests / event (without → with history) | mutations / event | history bytes / event | p50 ms without | p50 ms with | ratio |',
      '|---|---|---|---|---|---|---|',
    ];
    const figures: Record<string, unknown> = {};
    for (const kind of kinds) {
      const { on, off } = results[kind];
      const per = (c: Counts, key: keyof Counts) => round(c[key] / N, 2);
      const p50on = summarize(on.ms).p50;
      const p50off = summarize(off.ms).p50;
      figures[kind] = {
        requestsWithout: per(off.counts, 'requests'),
        requestsWith: per(on.counts, 'requests'),
        mutationsWithout: per(off.counts, 'mutations'),
        mutationsWith: per(on.counts, 'mutations'),
        historyBytes: per(on.counts, 'historyBytes'),
        p50MsWithout: round(p50off, 2),
        p50MsWith: round(p50on, 2),
        ratio: round(p50on / p50off, 2),
      };
      lines.push(
        `| ${kind} | ${per(off.counts, 'requests')} → ${per(on.counts, 'requests')} | ${per(off.counts, 'mutations')} → ${per(on.counts, 'mutations')} | ${per(on.counts, 'historyBytes')} | ${round(p50off, 2)} | ${round(p50on, 2)} | ${round(p50on / p50off, 2)} |`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(`${JSON.stringify({ n: N, figures })}\n`);
  } finally {
    await Promise.allSettled([stores.on.close(), stores.off.close()]);
    await messaging.deleteTopic(config.topics.notifications).catch(() => undefined);
    await messaging.close();
    await deleteTable(config);
    await emulators.stop();
  }
}

function emptyCounts(): Counts {
  return { requests: 0, mutations: 0, historyBytes: 0 };
}

main().catch((err: unknown) => {
  say(`bench:history failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
