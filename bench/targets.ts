/** The targets and ratios `npm run bench` derives from its figures (medians, or one run's). */
import type { ApiFigures, RunFigures, Targets } from './results.js';
import { round } from './stats.js';

export function targetsOf(m: RunFigures): Targets {
  const ours = m.wake['wake-up wait'];
  const target = (value: number, limit: number, baseline: string) => ({
    value: round(value, 2),
    limit,
    met: value <= limit,
    baseline,
  });
  return {
    wakeP99OverP50: target(ours.latencyMs.p99 / ours.latencyMs.p50, 2, 'wake-up p50'),
    wakeP50OverFloorP50: target(
      ours.latencyMs.p50 / m.floor.completionFloorP50Ms,
      1.3,
      'floor p50 (push + conditional write + streaming pull + read)',
    ),
    subscriberCpuOverAlone: target(
      m.cpu.subscriberMsPerEvent / m.cpu.writeAndPublishAloneMsPerEvent,
      2,
      'the same Bigtable write and announcement made alone',
    ),
    apiGetCpuOverStoreRead: target(
      m.cpu.apiMsPerGet / m.cpu.storeReadAloneMsPerGet,
      1.3,
      'the same read made with the store (Bigtable client) alone',
    ),
  };
}

export function ratiosOf(m: RunFigures, api: { get: ApiFigures; bareHttpBaseline: ApiFigures }) {
  const ours = m.wake['wake-up wait'];
  const fixed = m.wake['fixed 1 s polling'];
  const backoff = m.wake['backoff 100 ms x1.3'];
  return {
    fixedPollingP50OverOurs: round(fixed.latencyMs.p50 / ours.latencyMs.p50, 2),
    backoffP50OverOurs: round(backoff.latencyMs.p50 / ours.latencyMs.p50, 2),
    fixedPollingReadsOverOurs: round(fixed.readsPerWait / ours.readsPerWait, 2),
    backoffReadsOverOurs: round(backoff.readsPerWait / ours.readsPerWait, 2),
    oursP50OverFloor: round(ours.latencyMs.p50 / m.floor.completionFloorP50Ms, 2),
    eventThroughputOverPushFloor: round(m.events.eventsPerSecond / m.floor.pushPerSecond, 2),
    getOverBareHttp: round(api.get.requestsPerSecond / api.bareHttpBaseline.requestsPerSecond, 3),
  };
}
