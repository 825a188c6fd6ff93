/**
 * 2. Wake-up latency: from a worker's succeed() accepted by Pub/Sub to the waiting caller's
 * response, for the service's wait (woken by the wake-up topic, with its polling safety net) and
 * two polling baselines over the same API: fixed 1 s polling (the Go reference) and exponential
 * backoff from 100 ms ×1.3 (Google's client default); plus what each wait cost in requests and
 * Bigtable reads. The wait's reads come from the API's own count (`x-lro-bigtable-reads`: the
 * first read, the read on the wake-up and any safety-net polls, `x-lro-safety-net-polls` of
 * them); a polling GET is one read. The stages of each woken wait come from `x-lro-wake-timing`
 * (bench/stages.ts). The same measurement at 100 completions a second is the saturation figure,
 * and its first run on fresh functions the `fresh` one.
 */
import { setMaxListeners } from 'node:events';
import type { Stack } from '../../scripts/stack.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import { httpJson } from '../http.js';
import type { Strategy, WakeFigures } from '../results.js';
import { COMPLETIONS_PER_SECOND, WAITS } from '../settings.js';
import { roundSummary, type WakeTimestamps } from '../stages.js';
import { round, type Summary, summarize } from '../stats.js';
import { agent, createOperations, RESPONSE, sleep } from './common.js';
import { type PhaseLoop, startLoop } from './phase-loop.js';

/** One strategy's figures, with each latency and the stage timestamps for the chart and stages. */
export interface WakeResult extends WakeFigures {
  latencyMs: Summary;
  values: number[];
  timestamps: WakeTimestamps[];
  /** Event loops over the waits (after the operations were created), when asked for. */
  loop?: PhaseLoop | undefined;
}

/**
 * `waits` operations waited for by `strategy`, completed at random moments at `rate` a second;
 * `observe`: the event loops over the waits too.
 */
export async function measureWake(
  stack: Stack,
  strategy: Strategy,
  rate = COMPLETIONS_PER_SECOND,
  waits = WAITS,
  observe = false,
): Promise<WakeResult> {
  const api = stack.api.url;
  const names = await createOperations(api, waits);
  const stopLoop = observe ? await startLoop(stack) : undefined;
  const messaging = new Messaging(stack.config);
  const doneAt = new Map<string, number>();
  const doneEpoch = new Map<string, number>();
  const timingHeader = new Map<string, string>();
  let requests = 0;
  let reads = 0;
  let polls = 0;
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);

  const waitOne = async (name: string) => {
    const id = name.slice('operations/'.length);
    if (strategy === 'wake-up wait') {
      for (;;) {
        requests++;
        const res = await httpJson(
          agent,
          'POST',
          `${api}/v1/operations/${id}:wait`,
          { timeout: '60s' },
          controller.signal,
        );
        // The API's own count: the first read, the read on the wake-up, any safety-net polls.
        reads += Number(res.headers['x-lro-bigtable-reads'] ?? Number.NaN);
        polls += Number(res.headers['x-lro-safety-net-polls'] ?? Number.NaN);
        const timing = res.headers['x-lro-wake-timing'];
        if (typeof timing === 'string') timingHeader.set(name, timing);
        if ((res.body as Operation).done) break;
      }
    } else {
      let delay = strategy === 'fixed 1 s polling' ? 1_000 : 100;
      for (;;) {
        requests++;
        reads++; // one GET is one Bigtable read
        const res = await httpJson(
          agent,
          'GET',
          `${api}/v1/operations/${id}`,
          undefined,
          controller.signal,
        );
        if ((res.body as Operation).done) break;
        await sleep(delay);
        if (strategy === 'backoff 100 ms x1.3') delay = Math.min(delay * 1.3, 60_000);
      }
    }
    doneAt.set(name, performance.now());
    doneEpoch.set(name, Date.now());
  };
  const waiting = Promise.all(names.map(waitOne));
  // Let every wait start, then complete the operations at random moments, at about 30 a second:
  // well below what the emulator's push delivers, so that the figure is the wait's, not a queue's.
  await sleep(1_000);
  const accepted = new Map<string, number>();
  const acceptedEpoch = new Map<string, number>();
  const windowMs = Math.max(2_000, (names.length / rate) * 1_000);
  const schedule = names.map((name) => ({ name, at: Math.random() * windowMs }));
  const t0 = performance.now();
  await Promise.all(
    schedule.map(async ({ name, at }) => {
      await sleep(Math.max(0, t0 + at - performance.now()));
      const reporter = new OperationReporter({
        messaging,
        operation: name,
        topics: { events: stack.config.topics.events, notifications: false },
      });
      await reporter.succeed(RESPONSE);
      accepted.set(name, performance.now());
      acceptedEpoch.set(name, Date.now());
      await reporter.close();
    }),
  );
  const timeout = setTimeout(() => controller.abort(), 90_000);
  await waiting.catch(() => undefined);
  clearTimeout(timeout);
  const loop = await stopLoop?.();
  await messaging.close();
  const values: number[] = [];
  const timestamps: WakeTimestamps[] = [];
  for (const name of names) {
    const a = accepted.get(name);
    const d = doneAt.get(name);
    if (a !== undefined && d !== undefined) values.push(Math.max(0, d - a));
    const ae = acceptedEpoch.get(name);
    const de = doneEpoch.get(name);
    if (ae !== undefined && de !== undefined) {
      timestamps.push({ acceptedAt: ae, doneAt: de, header: timingHeader.get(name) });
    }
  }
  return {
    latencyMs: roundSummary(summarize(values)),
    values,
    timestamps,
    loop,
    readsPerWait: round(reads / names.length, 2),
    ...(strategy === 'wake-up wait'
      ? { safetyNetPollsPerWait: round(polls / names.length, 2) }
      : {}),
    requestsPerWait: round(requests / names.length, 2),
    missed: names.length - values.length,
  };
}
