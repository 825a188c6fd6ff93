/**
 * What recording event IDs costs (store.ts, event identity), on the Bigtable emulator: every
 * applied progress event leaves one cell of its eventId in the running operation's row, which
 * predicates check and reads filter out. It measures, for an operation that applied EVENTS
 * progress events against a fresh one (the baseline, in the same run): the latency of a get
 * (what waits and the API read), of a progress write, and of a terminal write.
 *
 * `node dist/bench/event-ids.js` (after `npm run build`); it starts the emulators unless
 * BIGTABLE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST point at running ones.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { startEmulators } from '../shared/local/emulators.js';
import { loadConfig } from '../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../shared/service/store/store.js';
import { round, summarize } from './stats.js';

const EVENTS = 1_000;
const SAMPLES = 100;
const progress = (n: number) => ({ '@type': 'type.googleapis.com/bench.Progress', n });

async function timed(samples: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await fn(i);
    out.push(performance.now() - started);
  }
  return out;
}

async function measure(store: OperationStore, name: string, base: number) {
  const get = summarize(await timed(SAMPLES, () => store.get(name)));
  const write = summarize(
    await timed(SAMPLES, (i) =>
      store.updateMetadata(name, progress(base + i), {
        emitTime: new Date(base + i),
        eventId: randomUUID(),
      }),
    ),
  );
  const started = performance.now();
  await store.complete(name, {}, { eventId: randomUUID() });
  return { get, write, completeMs: performance.now() - started };
}

async function main() {
  const emulators = await startEmulators();
  const config = loadConfig({
    GOOGLE_CLOUD_PROJECT: 'lro-bench',
    LRO_BIGTABLE_TABLE: `event-ids-${Date.now().toString(36)}`,
    BIGTABLE_EMULATOR_HOST: emulators.bigtable,
    PUBSUB_EMULATOR_HOST: emulators.pubsub,
  });
  await ensureTable(config);
  const store = createStore(config);
  try {
    const fresh = (await store.create()).operation.name;
    const busy = (await store.create()).operation.name;
    const base = Date.now();
    const ids = Array.from({ length: EVENTS }, (_, i) => i);
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < ids.length) {
          const i = next++;
          await store.updateMetadata(busy, progress(i), {
            emitTime: new Date(base - EVENTS + i),
            eventId: randomUUID(),
          });
        }
      }),
    );
    const baseline = await measure(store, fresh, base);
    const loaded = await measure(store, busy, base);
    const line = (what: string, a: { p50: number }, b: { p50: number }) =>
      `  ${what}: p50 ${round(b.p50)} ms with ${EVENTS} event IDs, ${round(a.p50)} ms without (×${round(b.p50 / a.p50)})`;
    process.stdout.write(
      [
        `event IDs (${SAMPLES} samples each, Bigtable emulator ${emulators.bigtable}):`,
        line('get', baseline.get, loaded.get),
        line('progress write', baseline.write, loaded.write),
        `  terminal write: ${round(loaded.completeMs)} ms with ${EVENTS + SAMPLES} event IDs, ${round(baseline.completeMs)} ms with ${SAMPLES}`,
        '',
      ].join('\n'),
    );
  } finally {
    await store.close();
    await deleteTable(config);
    await emulators.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
