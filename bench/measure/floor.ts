/**
 * 1. The floor: what Pub/Sub and Bigtable cost on their own, the baselines of the wake-up and
 * event figures. Publish → streaming pull and publish → push latency at the wake-up
 * measurement's completion rate (and at the saturation rate), push throughput to an endpoint that
 * does nothing, and the latency of a Bigtable read and conditional write through the store.
 */
import { createServer, type Server } from 'node:http';
import type { Stack } from '../../scripts/stack.js';
import { freePort } from '../../shared/local/emulators.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import type { FloorFigures } from '../results.js';
import {
  COMPLETIONS_PER_SECOND,
  EVENT_OPS,
  EVENTS_PER_OP,
  SATURATION_PER_SECOND,
} from '../settings.js';
import { roundSummary } from '../stages.js';
import { round, summarize } from '../stats.js';
import { sleep, suffix } from './common.js';

/**
 * Latency from publish accepted to arrival, for 3 seconds of messages published at `rate` a
 * second (the rate the wake-up benchmark completes operations), as `seen` records arrivals by
 * message body.
 */
async function paced(
  messaging: Messaging,
  topic: string,
  tag: string,
  seen: Map<string, number>,
  rate = COMPLETIONS_PER_SECOND,
): Promise<number[]> {
  const accepted = new Map<string, number>();
  await Promise.all(
    Array.from({ length: rate * 3 }, async (_, i) => {
      await sleep((i * 1_000) / rate);
      await messaging.publish(topic, Buffer.from(`${tag}${i}`));
      accepted.set(`${tag}${i}`, performance.now());
    }),
  );
  const deadline = performance.now() + 10_000;
  while ([...accepted.keys()].some((k) => !seen.has(k)) && performance.now() < deadline) {
    await sleep(5);
  }
  const latencies: number[] = [];
  for (const [key, at] of accepted) {
    const arrived = seen.get(key);
    if (arrived !== undefined) latencies.push(Math.max(0, arrived - at));
  }
  return latencies;
}

/** The floor's figures, and each push latency for the chart. */
export async function measureFloor(
  stack: Pick<Stack, 'config'>,
  run: number,
): Promise<FloorFigures & { pushValues: number[] }> {
  const messaging = new Messaging(stack.config);
  const topic = `bench-floor-${suffix}-${run}`;
  await messaging.ensureTopic(topic);
  // publish → streaming pull
  const pullSub = `${topic}-pull`;
  await messaging.ensurePullSubscription(pullSub, topic);
  const pulled = new Map<string, number>();
  const listener = messaging.listen(pullSub, (m) => {
    pulled.set(m.data.toString(), performance.now());
    m.ack();
  });
  await sleep(500);
  const pullLatency = await paced(messaging, topic, 'p', pulled);
  await listener.close();
  await messaging.deleteSubscription(pullSub);

  // publish → push to an endpoint that does nothing
  const received = new Map<string, number>();
  let pushCount = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pushCount++;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { message: { data: string } };
        received.set(Buffer.from(body.message.data, 'base64').toString(), performance.now());
      } catch {
        // not ours
      }
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const pushSub = `${topic}-push`;
  await messaging.ensurePushSubscription(pushSub, topic, {
    pushEndpoint: `http://127.0.0.1:${port}/`,
  });
  await sleep(500);
  const pushLatency = await paced(messaging, topic, 'q', received);
  const pushLatencySaturation = await paced(messaging, topic, 's', received, SATURATION_PER_SECOND);
  const burst = EVENT_OPS * EVENTS_PER_OP;
  const before = pushCount;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: burst }, (_, i) => messaging.publish(topic, Buffer.from(`b${i}`))),
  );
  const deadline = started + 120_000;
  while (pushCount - before < burst && performance.now() < deadline) await sleep(5);
  const pushPerSecond = ((pushCount - before) / (performance.now() - started)) * 1000;
  await messaging.deleteSubscription(pushSub);
  await messaging.deleteTopic(topic);
  await new Promise<void>((r) => server.close(() => r()));
  await messaging.close();

  // Bigtable read and conditional write, through the store
  const store = new BigtableOperationStore(stack.config);
  const { operation } = await store.create();
  const reads: number[] = [];
  const writes: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t = performance.now();
    await store.get(operation.name);
    reads.push(performance.now() - t);
    t = performance.now();
    await store.updateMetadata(
      operation.name,
      { '@type': 'type.googleapis.com/bench.P', i },
      { emitTime: new Date(Date.now() + i), eventId: `e${i}` },
    );
    writes.push(performance.now() - t);
  }
  await store.close();
  const figures = {
    pubsubPullMs: roundSummary(summarize(pullLatency)),
    pubsubPushMs: roundSummary(summarize(pushLatency)),
    pushPerSecond: round(pushPerSecond),
    bigtableReadMs: roundSummary(summarize(reads)),
    bigtableConditionalWriteMs: roundSummary(summarize(writes)),
    pubsubPushSaturationMs: roundSummary(summarize(pushLatencySaturation)),
  };
  return {
    ...figures,
    // The wake-up's path without the service: the event's push, its conditional write, the
    // wake-up's streaming pull and the woken wait's read of the row.
    completionFloorP50Ms: round(
      figures.pubsubPushMs.p50 +
        figures.bigtableConditionalWriteMs.p50 +
        figures.pubsubPullMs.p50 +
        figures.bigtableReadMs.p50,
    ),
    pushValues: pushLatency,
  };
}
