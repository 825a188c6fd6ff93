/** The report `npm run bench` prints: the median figures as Markdown tables, the runs' spread in brackets. */
import type { LoopSnapshot } from './loop.js';
import type { BenchResults, RunFigures, Target, WakeFigures } from './results.js';
import {
  COMPLETIONS_PER_SECOND,
  CPU_READS,
  SATURATION_PER_SECOND,
  SATURATION_WAITS,
  WAITS,
} from './settings.js';
import { STAGES, type StageBreakdown } from './stages.js';
import { round, type Summary } from './stats.js';

type Spread = [number, number] | [];

/** A figure with the runs' spread, e.g. `112 (98–131)`. */
function withSpreadOf(runs: number, value: number, spread: unknown): string {
  const s = spread as Spread;
  if (runs < 2 || s.length !== 2) return `${round(value)}`;
  return `${round(value)} (${round(s[0])}–${round(s[1])})`;
}

function dig(root: unknown, path: string[]): unknown {
  let node = root;
  for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

/** The printed report of the results (the median figures, the spread of the runs). */
export function report(results: BenchResults): string {
  const m: RunFigures = results;
  const { api, memory, fresh, targets } = results;
  const RUNS = results.runs;
  const withSpread = (value: number, spread: unknown) => withSpreadOf(RUNS, value, spread);
  const sp = (...path: string[]) => dig(results.spread, path);
  const pct = (path: string[], summary: Summary) =>
    (['p50', 'p95', 'p99'] as const).map((p) => withSpread(summary[p], sp(...path, p))).join(' | ');
  const ours = m.wake['wake-up wait'];
  const fixed = m.wake['fixed 1 s polling'];
  const backoff = m.wake['backoff 100 ms x1.3'];
  const row = (label: string, key: string, r: WakeFigures) =>
    `| ${label} | ${pct(['wake', key, 'latencyMs'], r.latencyMs)} | ${r.readsPerWait} | ${r.missed} |`;
  const stageRows = (path: string[], b: StageBreakdown) =>
    STAGES.map((st) => `| ${st.label} | ${pct([...path, 'stages', st.key], b.stages[st.key])} |`);
  const loopRow = (label: string, l: LoopSnapshot | undefined) =>
    l
      ? `| ${label} | ${l.delayMs.p50} | ${l.delayMs.p99} | ${l.delayMs.max} | ${l.gc.count} (${l.gc.major} major) | ${l.gc.maxMs} | ${round(l.gc.totalMs)} | ${round(l.cpuMs / l.elapsedMs, 2)} |`
      : `| ${label} | n/a | | | | | | |`;
  const t = targets;
  const tRow = (label: string, x: Target) =>
    `| ${label} | ${x.value} | ≤ ${x.limit} | ${x.met ? 'met' : 'NOT met'} | ${x.baseline} |`;
  const runs = RUNS > 1 ? `median of ${RUNS} runs (lowest–highest run)` : 'one run';
  return [
    '',
    `Figures: ${runs}.`,
    '',
    `| wake-up strategy (${WAITS} concurrent waits, ${COMPLETIONS_PER_SECOND}/s) | p50 ms | p95 ms | p99 ms | Bigtable reads / wait | missed |`,
    '|---|---|---|---|---|---|',
    row('wait woken by the wake-up topic (ours)', 'wake-up wait', ours),
    row('backoff 100 ms ×1.3', 'backoff 100 ms x1.3', backoff),
    row('fixed 1 s polling (Go reference)', 'fixed 1 s polling', fixed),
    '',
    `| stage of the wake-up wait (${m.stages.woken} of ${WAITS} woken by a wake-up; ${ours.safetyNetPollsPerWait} safety-net polls / wait) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...stageRows(['stages'], m.stages),
    `| **wake-up, end to end** | ${pct(['wake', 'wake-up wait', 'latencyMs'], ours.latencyMs)} |`,
    `| after the push: push received → response received | ${pct(['stages', 'afterPush'], m.stages.afterPush)} |`,
    `| events in the subscriber when a push arrived (p50 / max) | ${m.stages.subscriberInFlight.p50} / ${m.stages.subscriberInFlight.max} | | |`,
    `| floor, same run: publish → push to a no-op endpoint | ${pct(['floor', 'pubsubPushMs'], m.floor.pubsubPushMs)} |`,
    `| floor, same run: Bigtable conditional write | ${pct(['floor', 'bigtableConditionalWriteMs'], m.floor.bigtableConditionalWriteMs)} |`,
    `| floor, same run: publish → streaming pull | ${pct(['floor', 'pubsubPullMs'], m.floor.pubsubPullMs)} |`,
    '',
    `| fresh functions: their first ${WAITS} completions (once, before the runs, the emulators warmed first) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...STAGES.map((st) => {
      const x = fresh.stages.stages[st.key];
      return `| ${st.label} | ${round(x.p50)} | ${round(x.p95)} | ${round(x.p99)} |`;
    }),
    `| **wake-up, end to end** | ${round(fresh.latencyMs.p50)} | ${round(fresh.latencyMs.p95)} | ${round(fresh.latencyMs.p99)} |`,
    `| after the push: push received → response received | ${round(fresh.stages.afterPush.p50)} | ${round(fresh.stages.afterPush.p95)} | ${round(fresh.stages.afterPush.p99)} |`,
    `| events in the subscriber when a push arrived (p50 / max) | ${fresh.stages.subscriberInFlight.p50} / ${fresh.stages.subscriberInFlight.max} | | |`,
    `| fresh p99 / warm p99 (the runs' median): end to end; after the push | ${round(fresh.latencyMs.p99 / ours.latencyMs.p99, 2)}× | ${round(fresh.stages.afterPush.p99 / m.stages.afterPush.p99, 2)}× | |`,
    '',
    `| saturation: ${SATURATION_PER_SECOND} completions/s, ${SATURATION_WAITS} waits (${m.saturation.stages.woken} woken by a wake-up) | p50 ms | p95 ms | p99 ms |`,
    '|---|---|---|---|',
    ...stageRows(['saturation', 'stages'], m.saturation.stages),
    `| **wake-up, end to end** | ${pct(['saturation', 'latencyMs'], m.saturation.latencyMs)} |`,
    `| events in the subscriber when a push arrived (p50 / max) | ${m.saturation.stages.subscriberInFlight.p50} / ${m.saturation.stages.subscriberInFlight.max} | | |`,
    `| floor, same run: publish → push at ${SATURATION_PER_SECOND}/s | ${pct(['saturation', 'pushFloorMs'], m.saturation.pushFloorMs)} |`,
    '',
    '| event loop over the phase | delay p50 ms | p99 ms | max ms | GCs | longest GC ms | GC total ms | cores busy |',
    '|---|---|---|---|---|---|---|---|',
    loopRow(`API, ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.api),
    loopRow(`subscriber, ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.subscriber),
    loopRow(`benchmark (the callers), ${COMPLETIONS_PER_SECOND}/s wait`, m.loop.bench),
    loopRow(`API, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.api),
    loopRow(`subscriber, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.subscriber),
    loopRow(`benchmark, ${SATURATION_PER_SECOND}/s`, m.saturation.loop.bench),
    loopRow('API, 16 callers of GET', m.cpu.getLoop.api),
    '',
    '| CPU | ms | baseline in the same run | ms |',
    '|---|---|---|---|',
    `| subscriber, per event | ${withSpread(m.cpu.subscriberMsPerEvent, sp('cpu', 'subscriberMsPerEvent'))} | its Bigtable write + notification (and wake-up) publish made alone | ${withSpread(m.cpu.writeAndPublishAloneMsPerEvent, sp('cpu', 'writeAndPublishAloneMsPerEvent'))} |`,
    `| API, per GET (16 callers, ${CPU_READS} GETs) | ${withSpread(m.cpu.apiMsPerGet, sp('cpu', 'apiMsPerGet'))} | the same read with the store alone | ${withSpread(m.cpu.storeReadAloneMsPerGet, sp('cpu', 'storeReadAloneMsPerGet'))} |`,
    `| API, per request that reads nothing (a 404 for an unrouted path) | ${withSpread(m.cpu.apiMsPerUnroutedRequest, sp('cpu', 'apiMsPerUnroutedRequest'))} | | |`,
    `| the functions framework alone, per request (a function that only answers) | ${withSpread(m.cpu.frameworkMsPerRequest, sp('cpu', 'frameworkMsPerRequest'))} | | |`,
    `| the store read inside a domain, as the functions framework runs each request | ${withSpread(m.cpu.storeReadInDomainMsPerGet, sp('cpu', 'storeReadInDomainMsPerGet'))} | the same read in the same child process without | ${withSpread(m.cpu.storeReadInChildMsPerGet, sp('cpu', 'storeReadInChildMsPerGet'))} |`,
    `| API, per wait (request, first read, wake-up, read) | ${withSpread(m.cpu.apiMsPerWait, sp('cpu', 'apiMsPerWait'))} | | |`,
    `| subscriber, per completion in the wait | ${withSpread(m.cpu.subscriberMsPerCompletion, sp('cpu', 'subscriberMsPerCompletion'))} | | |`,
    '',
    '| target (medians) | value | limit | | baseline |',
    '|---|---|---|---|---|',
    tRow('wake-up p99 / p50', t.wakeP99OverP50),
    `| the push floor's own p99 / p50, same run | ${round(m.floor.pubsubPushMs.p99 / m.floor.pubsubPushMs.p50, 2)} | | | publish → push to a no-op endpoint |`,
    tRow('wake-up p50 / floor p50', t.wakeP50OverFloorP50),
    tRow('subscriber CPU per event / alone', t.subscriberCpuOverAlone),
    tRow('API CPU per GET / store read alone', t.apiGetCpuOverStoreRead),
    '',
    '| figure | value | baseline in the same run | ratio |',
    '|---|---|---|---|',
    `| polling p50 / ours | ${round(fixed.latencyMs.p50)} / ${round(backoff.latencyMs.p50)} ms | ours ${round(ours.latencyMs.p50)} ms | ${round(fixed.latencyMs.p50 / ours.latencyMs.p50, 2)}× / ${round(backoff.latencyMs.p50 / ours.latencyMs.p50, 2)}× slower |`,
    `| event throughput | ${withSpread(m.events.eventsPerSecond, sp('events', 'eventsPerSecond'))} events/s | push to a no-op endpoint ${withSpread(m.floor.pushPerSecond, sp('floor', 'pushPerSecond'))} msg/s | ${round(m.events.eventsPerSecond / m.floor.pushPerSecond, 2)} |`,
    `| GET operation | ${api.get.requestsPerSecond} req/s, p50 ${api.get.latencyMs.p50} ms, p99 ${api.get.latencyMs.p99} ms | bare HTTP ${api.bareHttpBaseline.requestsPerSecond} req/s | ${round(api.get.requestsPerSecond / api.bareHttpBaseline.requestsPerSecond, 3)} |`,
    `| create operation | ${api.create.requestsPerSecond} req/s, p50 ${api.create.latencyMs.p50} ms, p99 ${api.create.latencyMs.p99} ms | | |`,
    `| API memory | idle ${memory.idleMiB} MiB, 1,000 waits ${memory.with1000WaitsMiB} MiB, 5,000 waits ${memory.with5000WaitsMiB} MiB | | ${memory.perWaitKiB} KiB per wait |`,
    '',
    'Results: bench-results/bench.json, chart: bench-results/wake-latency.svg',
  ].join('\n');
}
