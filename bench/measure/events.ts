/**
 * 3. Event throughput end to end (publish → push → subscriber → Bigtable → notification): the
 * events of many operations published at once, and the subscriber's CPU per event meanwhile.
 */
import type { Stack } from '../../scripts/stack.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import type { EventFigures } from '../results.js';
import { EVENT_OPS, EVENTS_PER_OP } from '../settings.js';
import { cpuTimeMs, round } from '../stats.js';
import { createOperations, pool, RESPONSE, sleep, suffix } from './common.js';

export async function measureEvents(stack: Stack, run: number): Promise<EventFigures> {
  const names = await createOperations(stack.api.url, EVENT_OPS);
  const messaging = new Messaging(stack.config);
  const watchSub = `bench-events-${suffix}-${run}`;
  await messaging.ensurePullSubscription(watchSub, stack.config.topics.notifications);
  const finished = new Set<string>();
  let notifications = 0;
  const listener = messaging.listen(watchSub, (m) => {
    notifications++;
    if (m.attributes.type === 'succeeded' && m.attributes.operation) {
      finished.add(m.attributes.operation);
    }
    m.ack();
  });
  await sleep(500);
  const pid = stack.subscriber.process.pid as number;
  const cpuBefore = cpuTimeMs(pid);
  const started = performance.now();
  await pool(names, 50, async (name) => {
    const reporter = new OperationReporter({
      messaging,
      operation: name,
      topics: { events: stack.config.topics.events, notifications: false },
    });
    for (let i = 1; i < EVENTS_PER_OP; i++) {
      await reporter.progress({ '@type': 'type.googleapis.com/bench.Progress', percent: i * 10 });
    }
    await reporter.succeed(RESPONSE);
    await reporter.close();
  });
  const published = performance.now();
  const deadline = started + 300_000;
  while (finished.size < names.length && performance.now() < deadline) await sleep(10);
  const elapsed = performance.now() - started;
  const cpu = cpuTimeMs(pid) - cpuBefore;
  await listener.close();
  await messaging.deleteSubscription(watchSub);
  await messaging.close();
  const events = names.length * EVENTS_PER_OP;
  return {
    events,
    operationsFinished: finished.size,
    publishSeconds: round((published - started) / 1000, 2),
    endToEndSeconds: round(elapsed / 1000, 2),
    eventsPerSecond: round((events / elapsed) * 1000),
    subscriberCpuMsPerEvent: round(cpu / events, 2),
    notificationsSeen: notifications,
  };
}
