/**
 * A worker killed mid-operation, against the whole local stack (scripts/stack.ts: the three
 * functions, the push subscription, and the sweeper called every 2 s): its operation ends
 * DEADLINE_EXCEEDED within the heartbeat timeout plus one sweep interval, a caller already waiting
 * wakes by the notification (one Bigtable read, no safety-net poll), and the worker's late
 * success changes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/stack.js';
import { freePort } from '../../shared/local/emulators.js';
import { teardownStack } from '../../shared/local/provision.js';
import { Code } from '../../shared/sdk/errors.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { testEnv } from '../support/env.js';
import { event, until } from '../support/event-stack.js';
import { ROOT } from '../support/functions.js';
import { call } from '../support/operations-stack.js';

let stack: Stack;
const HEARTBEAT_TIMEOUT_S = 8;
const SWEEP_INTERVAL_MS = 2_000;

beforeAll(async () => {
  stack = await startStack({
    // No safety-net poll within the test: its first one (10 s after a wait starts) falls where
    // the sweeper ends the operation (8 s after the last heartbeat, plus up to one sweep
    // interval), and a poll that read the ended row before the wake-up arrived would end the
    // wait without the wake-up. With it off, only the wake-up can end the wait early.
    env: { ...testEnv(), METADATA_SERVER_DETECTION: 'none', LRO_WAIT_SAFETY_POLL: '3600s' },
    apiPort: await freePort(),
    subscriberPort: await freePort(),
    sweepIntervalMs: SWEEP_INTERVAL_MS,
  });
}, 120_000);

afterAll(async () => {
  if (!stack) return;
  await stack.stop();
  await teardownStack(stack.config);
});

/**
 * A worker process as a backend runs one: creates its operation through the API with a heartbeat
 * timeout, opens a reporter (heartbeats every second), reports 10 %, then works for ever.
 */
function startWorker(): { child: ChildProcess; ready: Promise<string> } {
  const module = (file: string) => JSON.stringify(pathToFileURL(resolve(ROOT, file)).href);
  const script = [
    `const { loadConfig } = await import(${module('dist/shared/service/runtime/config.js')});`,
    `const { OperationReporter } = await import(${module('dist/shared/sdk/reporter.js')});`,
    `const created = await fetch(${JSON.stringify(`${stack.api.url}/v1/operations`)}, {`,
    "  method: 'POST',",
    "  headers: { 'content-type': 'application/json' },",
    `  body: JSON.stringify({ heartbeatTimeout: '${HEARTBEAT_TIMEOUT_S}s' }),`,
    '});',
    'const { name } = await created.json();',
    'const reporter = await OperationReporter.open({',
    '  config: loadConfig(process.env),',
    '  operation: name,',
    '  topics: { notifications: false },',
    '  heartbeatIntervalMs: 1000,',
    '});',
    "await reporter.progress({ '@type': 'type.googleapis.com/test.Progress', percent: 10 });",
    'process.stdout.write(`working on ${name}\\n`);',
    'setInterval(() => {}, 60_000);',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...stack.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise<string>((resolveReady, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      const name = /working on (operations\/\S+)\n/.exec(output)?.[1];
      if (name) resolveReady(name);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code) => reject(new Error(`worker exited (${code}):\n${output}`)));
  });
  return { child, ready };
}

describe('a worker killed mid-operation', () => {
  it('ends its operation by the heartbeat timeout, wakes the waiting caller by notification, and ignores the late success', async () => {
    const api = stack.api.url;
    // Warm-up: the API's notification listener is up and the emulator's push is flowing (its
    // first delivery to a new subscription takes seconds) before the real operation starts.
    const warm = await call(api, 'POST', '/v1/operations', {});
    await call(api, 'POST', `/v1/${warm.body.name}:wait`, { timeout: '1s' });
    const warmer = new Messaging(stack.config);
    try {
      await warmer.publish(stack.config.topics.events, event(warm.body.name, 'succeeded', {}), {
        attributes: { operation: warm.body.name, type: 'succeeded' },
      });
    } finally {
      await warmer.close();
    }
    await until(
      async () => (await call(api, 'GET', `/v1/${warm.body.name}`)).body.done === true,
      60_000,
      'warm-up event applied',
    );

    const worker = startWorker();
    const name = await worker.ready;
    await until(
      async () => (await call(api, 'GET', `/v1/${name}`)).body.metadata?.percent === 10,
      30_000,
      'progress applied',
    );

    const waiting = call(api, 'POST', `/v1/${name}:wait`, { timeout: '120s' });
    worker.child.kill('SIGKILL');
    const reply = await waiting;

    expect(reply.status).toBe(200);
    expect(reply.body.done).toBe(true);
    expect(reply.body.error.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(reply.body.error.message).toMatch(
      new RegExp(`^heartbeat timeout of ${HEARTBEAT_TIMEOUT_S}s exceeded; last heartbeat at `),
    );
    expect(reply.body.metadata).toEqual({
      '@type': 'type.googleapis.com/test.Progress',
      percent: 10,
    });
    // Ended by the sweeper once the timeout had passed since the last heartbeat, within one
    // sweep interval plus a margin for a loaded machine (the sweep's own time), as the service's
    // own times say (the wait's wake-up and this process's scheduling are not part of it).
    const times = await call(api, 'GET', `/v1/${name}/times`);
    expect(times.status).toBe(200);
    const sinceHeartbeatMs =
      Date.parse(times.body.endTime) - Date.parse(times.body.lastHeartbeatTime);
    expect(sinceHeartbeatMs).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_S * 1000);
    expect(sinceHeartbeatMs).toBeLessThan(HEARTBEAT_TIMEOUT_S * 1000 + SWEEP_INTERVAL_MS + 6_000);
    // Woken by the notification: only a wait that a wake-up ended carries its timing.
    expect(reply.headers.get('x-lro-wake-timing')).toBeTruthy();

    // The worker's success, published late (say, by a retry that was still in flight).
    const messaging = new Messaging(stack.config);
    try {
      const late = event(name, 'succeeded', {
        response: { '@type': 'type.googleapis.com/test.Result', ok: true },
      });
      await messaging.publish(stack.config.topics.events, late, {
        attributes: { operation: name, type: 'succeeded' },
      });
      await until(
        () =>
          stack.subscriber
            .output()
            .includes(`"message":"event ignored: the operation had already ended"`) &&
          stack.subscriber.output().includes(late.eventId),
        30_000,
        'late success handled',
      );
    } finally {
      await messaging.close();
    }
    const after = await call(api, 'GET', `/v1/${name}`);
    expect(after.body).toEqual(reply.body);
  });
});
