/**
 * The deployed archive itself (dist/deploy, `npm run build:deploy`), installed as Cloud Build
 * installs it (`npm ci --omit=dev`) into a directory of its own and started with its own functions
 * framework: the bundle finds the files it reads by relative path (protos, console files),
 * Bigtable's metrics chain is not installed, each instance warms up before it listens, and an
 * operation goes from create through the subscriber to done and is answered by get and wait; the
 * pull subscriber starts from it too and applies what it pulls.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installArtifact, treeSize } from '../../scripts/build-deploy.js';
import { stackNames } from '../../shared/local/provision.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { testEnv } from '../support/env.js';
import { event, progress } from '../support/event-stack.js';
import { ROOT, type RunningFunction, startFunction } from '../support/functions.js';

let dir: string;
let env: Record<string, string>;
let config: Config;
let messaging: Messaging;
let api: RunningFunction;
let subscriber: RunningFunction;
let subscriberPull: RunningFunction;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lro-deployed-'));
  await installArtifact(dir);
  // A bound far above what the warm-up needs (a loaded machine takes seconds).
  env = testEnv({ LRO_WARM_UP_TIMEOUT: '120s' });
  config = loadConfig(env);
  messaging = new Messaging(config);
  await Promise.all([
    ensureTable(config),
    messaging.ensureTopic(config.topics.notifications),
    messaging.ensureTopic(config.topics.deadLetter),
    messaging.ensureTopic(config.topics.events),
  ]);
  // The pull subscriber's two subscriptions, as pull subscriptions.
  const names = stackNames(config);
  await Promise.all([
    messaging.ensurePushSubscription(names.eventsSubscription, config.topics.events, {}),
    messaging.ensurePushSubscription(
      names.deadLetterStoreSubscription,
      config.topics.deadLetter,
      {},
    ),
  ]);
  [api, subscriber, subscriberPull] = await Promise.all([
    startFunction('operations', env, undefined, { sourceDir: dir, readyTimeoutMs: 180_000 }),
    startFunction('subscriber', env, undefined, { sourceDir: dir, readyTimeoutMs: 180_000 }),
    startFunction('subscriberPull', env, undefined, { sourceDir: dir, readyTimeoutMs: 180_000 }),
  ]);
}, 400_000);

afterAll(async () => {
  await Promise.allSettled([api?.stop(), subscriber?.stop(), subscriberPull?.stop()]);
  if (config) {
    const store = createStore(config);
    await deleteTable(config).catch(() => undefined);
    await store.close();
    const names = stackNames(config);
    await Promise.allSettled([
      messaging.deleteSubscription(names.eventsSubscription),
      messaging.deleteSubscription(names.deadLetterStoreSubscription),
    ]);
    await Promise.allSettled([
      messaging.deleteTopic(config.topics.notifications),
      messaging.deleteTopic(config.topics.deadLetter),
      messaging.deleteTopic(config.topics.events),
    ]);
    await messaging.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The structured log lines a function wrote. */
function logLines(fn: RunningFunction): Record<string, unknown>[] {
  return fn
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A Pub/Sub push of one worker event, as the events topic's push subscription posts it. */
async function push(value: unknown) {
  const res = await fetch(subscriber.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(value)).toString('base64'),
        messageId: randomUUID(),
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${config.projectId}/subscriptions/events-push`,
    }),
  });
  return res.status;
}

describe('the deployed archive', () => {
  it('installs the functions framework alone: no client library, no metrics chain, within 50 MB', () => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      main: string;
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies)).toEqual(['@google-cloud/functions-framework']);
    expect(existsSync(join(dir, manifest.main))).toBe(true);
    expect(existsSync(join(dir, `${manifest.main}.map`))).toBe(true);
    for (const pkg of [
      'googleapis',
      '@google-cloud/bigtable',
      '@opentelemetry/api',
      'google-gax',
    ]) {
      expect(existsSync(join(dir, 'node_modules', pkg)), pkg).toBe(false);
    }
    expect(treeSize(dir).bytes).toBeLessThan(50 * 1024 * 1024);
    // Nor is Bigtable's metrics export bundled (so never loaded): the bundle's sources say (the
    // entry point, manifest.main, loads the bundle beside it).
    const bundle = join(dir, dirname(manifest.main), 'bundle.js');
    expect(readFileSync(join(dir, manifest.main), 'utf8')).toContain('"./bundle.js"');
    const map = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as {
      sources: string[];
    };
    const bundled = map.sources.join('\n');
    expect(bundled).toContain('node_modules/@google-cloud/bigtable/');
    for (const pkg of [
      'googleapis',
      '@google-cloud/monitoring',
      '@google-cloud/opentelemetry-cloud-monitoring-exporter',
      '@opentelemetry/sdk-metrics',
    ]) {
      expect(bundled, pkg).not.toContain(`node_modules/${pkg}/`);
    }
  });

  it('pins the functions framework the repository tests with', () => {
    const deployed = JSON.parse(readFileSync(join(ROOT, 'deploy/package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    const deployedLock = JSON.parse(
      readFileSync(join(ROOT, 'deploy/package-lock.json'), 'utf8'),
    ) as { packages: Record<string, { version: string }> };
    const framework = 'node_modules/@google-cloud/functions-framework';
    const tested = lock.packages[framework]?.version;
    expect(deployed.dependencies['@google-cloud/functions-framework']).toBe(tested);
    expect(deployedLock.packages[framework]?.version).toBe(tested);
  });

  it('warms each instance up before it listens, reaching Bigtable and Pub/Sub', () => {
    for (const [fn, target] of [
      [api, 'operations'],
      [subscriber, 'subscriber'],
      [subscriberPull, 'subscriberPull'],
    ] as const) {
      const warmed = logLines(fn).find((l) => l.message === 'instance warmed up');
      expect(warmed, fn.output()).toMatchObject({ target, outcome: 'done' });
      expect(Object.keys(warmed?.steps as object).sort()).toEqual(
        target === 'operations' ? ['bigtable', 'pubsub'] : ['bigtable', 'event decoding', 'pubsub'],
      );
    }
  });

  it('creates, applies events, gets and waits', async () => {
    const created = await call('POST', `${api.url}/v1/operations`, { metadata: progress(0) });
    expect(created.status).toBe(200);
    const name = created.body.name as string;
    expect(await push(event(name, 'metadata', { metadata: progress(1) }))).toBeLessThan(300);
    const response = { '@type': 'type.googleapis.com/test.Result', value: 'ok' };
    expect(await push(event(name, 'succeeded', { response }))).toBeLessThan(300);
    const got = await call('GET', `${api.url}/v1/${name}`);
    expect(got.body).toMatchObject({ name, done: true, response });
    const waited = await call('POST', `${api.url}/v1/${name}:wait`, { timeout: '5s' });
    expect((waited.body as unknown as Operation).done).toBe(true);
  });

  it('starts the pull subscriber, which applies an event it pulls and answers its status', async () => {
    const created = await call('POST', `${api.url}/v1/operations`, { metadata: progress(0) });
    const name = created.body.name as string;
    const response = { '@type': 'type.googleapis.com/test.Result', value: 'pulled' };
    await messaging.publish(config.topics.events, event(name, 'succeeded', { response }), {
      attributes: { operation: name, type: 'succeeded' },
    });
    const waited = await call('POST', `${api.url}/v1/${name}:wait`, { timeout: '30s' });
    expect(waited.body).toMatchObject({ name, done: true, response });
    const status = await call('GET', subscriberPull.url);
    expect(status).toMatchObject({ status: 200, body: { state: 'pulling' } });
    expect((status.body.events as { acked: number }).acked).toBeGreaterThanOrEqual(1);
  });

  it('serves the console page, its style sheet and its scripts from beside the bundle', async () => {
    const page = await fetch(`${api.url}/console/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe(readFileSync(join(ROOT, 'console/index.html'), 'utf8'));
    const style = await fetch(`${api.url}/console/style.css`);
    expect([style.status, style.headers.get('content-type')]).toEqual([
      200,
      'text/css; charset=utf-8',
    ]);
    expect(await style.text()).toBe(readFileSync(join(ROOT, 'console/style.css'), 'utf8'));
    const script = await fetch(`${api.url}/console/app/console/main.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain('import');
  });
});
