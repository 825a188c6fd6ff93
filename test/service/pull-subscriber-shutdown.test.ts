/**
 * Orderly shutdown of the pull subscriber: sent SIGTERM while messages are in its handlers (this
 * test's own Bigtable emulator frozen, so that their writes wait), it stops pulling, lets them
 * finish once Bigtable is back, acks each, and only then exits 0: every event is applied before
 * the exit, none nacked for a redelivery.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionStack, teardownStack } from '../../shared/local/provision.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { openStores } from '../../shared/service/store/bigtable/stores.js';
import { type PrivateBigtable, startPrivateBigtable } from '../faults/support.js';
import { testEnv } from '../support/env.js';
import { event, progress } from '../support/event-stack.js';
import { startFunction } from '../support/functions.js';
import { result } from '../support/pipeline.js';
import { until } from '../support/until.js';

const EVENTS = 4;

let bigtable: PrivateBigtable;
let config: Config;
let messaging: Messaging;

beforeAll(async () => {
  bigtable = await startPrivateBigtable();
});

afterAll(async () => {
  bigtable?.resume();
  if (config) await teardownStack(config, { messaging, table: false });
  await messaging?.close();
  await bigtable?.stop();
});

describe('shutdown of the pull subscriber', () => {
  it('SIGTERM with messages in its handlers: they finish and are acked, then exit 0', async () => {
    const env = testEnv({ BIGTABLE_EMULATOR_HOST: bigtable.host });
    config = loadConfig(env);
    messaging = new Messaging(config);
    await provisionStack(config, { delivery: 'pull', messaging });
    const stores = openStores(config);
    const fn = await startFunction('subscriberPull', env);
    const inFlight = async () => {
      const reply = await fetch(fn.url);
      const body = (await reply.json()) as { events: { inFlight: number; open: boolean } };
      return body.events;
    };
    try {
      const names: string[] = [];
      for (let i = 0; i < EVENTS; i++) {
        names.push((await stores.operations.create({ metadata: progress(0) })).operation.name);
      }
      await until(async () => (await inFlight()).open, 30_000, 'the events stream open');
      bigtable.freeze();
      for (const [i, name] of names.entries()) {
        const input = event(name, 'succeeded', {
          metadata: progress(1),
          response: result(`r${i}`),
        });
        await messaging.publish(config.topics.events, input, {
          attributes: { operation: name, type: 'succeeded' },
        });
      }
      // Every event is in a handler, its write waiting on the frozen Bigtable.
      await until(async () => (await inFlight()).inFlight === EVENTS, 30_000, 'events in flight');

      const exit = new Promise<number | null>((resolve) =>
        fn.process.once('exit', (code) => resolve(code)),
      );
      fn.process.kill('SIGTERM');
      await until(
        () => fn.output().includes('"message":"shutting down"'),
        10_000,
        'the shutdown to begin',
      );
      bigtable.resume();
      expect(await exit).toBe(0);

      for (const [i, name] of names.entries()) {
        expect((await stores.operations.get(name)).operation).toEqual({
          name,
          done: true,
          metadata: progress(1),
          response: result(`r${i}`),
        });
      }
      await until(
        () =>
          fn.output().includes(`"message":"pull subscriber stopped","acked":${EVENTS},"nacked":0`),
        10_000,
        'the "pull subscriber stopped" log line',
      );
    } finally {
      bigtable.resume();
      await fn.stop();
      await stores.close();
    }
  }, 120_000);
});
