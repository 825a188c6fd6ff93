/**
 * The pull subscriber started before its subscriptions exist (a first deployment can start the
 * service before its subscriptions or grants are in place): its status says the streams are
 * closed and why, it opens them again once they exist, and applies what is then published.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionStack, teardownStack } from '../../shared/local/provision.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { ensureTable } from '../../shared/service/store/bigtable/operation-store.js';
import { openStores } from '../../shared/service/store/bigtable/stores.js';
import { testEnv } from '../support/env.js';
import { event, progress } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { result } from '../support/pipeline.js';
import { until, untilValue } from '../support/until.js';

interface StreamStatus {
  open: boolean;
  lastError?: string;
}

let config: Config;
let messaging: Messaging;
let fn: RunningFunction;

beforeAll(async () => {
  const env = testEnv();
  config = loadConfig(env);
  messaging = new Messaging(config);
  await ensureTable(config);
  fn = await startFunction('subscriberPull', env);
});

afterAll(async () => {
  await fn?.stop();
  await teardownStack(config, { messaging });
  await messaging?.close();
});

async function events(): Promise<StreamStatus> {
  const reply = await fetch(fn.url);
  expect(reply.status).toBe(200);
  return ((await reply.json()) as { events: StreamStatus }).events;
}

describe('the pull subscriber started before its subscriptions exist', () => {
  it('reports the closed stream, then pulls once the subscriptions are created', async () => {
    const closed = await untilValue(
      async () => {
        const status = await events();
        return !status.open && status.lastError !== undefined ? status : undefined;
      },
      30_000,
      'the events stream reported closed',
    );
    expect(closed.lastError).toMatch(/does not exist|not found/i);

    await provisionStack(config, { delivery: 'pull', messaging });
    await until(async () => (await events()).open, 60_000, 'the events stream open again');
    const stores = openStores(config);
    try {
      const { operation } = await stores.operations.create({ metadata: progress(0) });
      await messaging.publish(
        config.topics.events,
        event(operation.name, 'succeeded', { response: result('late') }),
        { attributes: { operation: operation.name, type: 'succeeded' } },
      );
      await until(
        async () => (await stores.operations.get(operation.name)).operation.done === true,
        60_000,
        'the event applied',
      );
      expect((await stores.operations.get(operation.name)).operation.response).toEqual(
        result('late'),
      );
    } finally {
      await stores.close();
    }
    expect(fn.output()).toContain('"message":"pull subscriber stream ended; opening it again"');
  });
});
