/**
 * 4. CPU: the subscriber's per event beside the same Bigtable write and notification publish made
 * alone, the API's per GET beside the same read made with the store alone, per request that
 * reads nothing, the functions framework's own per request, and the store read inside a Node.js
 * domain (as the framework runs each request) beside the same read without.
 */
import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from '../../scripts/run-function.js';
import type { Stack } from '../../scripts/stack.js';
import { Messaging } from '../../shared/sdk/messaging.js';
import { announce } from '../../shared/sdk/notifications.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { httpJson } from '../http.js';
import { CPU_READS, CPU_WRITES, EVENTS_PER_OP } from '../settings.js';
import { cpuTimeMs, round } from '../stats.js';
import { agent, createOperations, pool, RESPONSE } from './common.js';
import { withLoop } from './phase-loop.js';

/** CPU (ms) this process spends on `fn`. */
async function ownCpuMs(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

export async function measureCpu(stack: Stack) {
  // The subscriber's own Bigtable write and announcement (the notification, and the wake-up of
  // a completion), made here alone: nine progress writes and one completion per operation, as the
  // event benchmark sends them, with a few in flight as push delivers them.
  const store = new BigtableOperationStore(stack.config);
  const messaging = new Messaging(stack.config);
  const topics = {
    notifications: stack.config.topics.notifications,
    wakeups: stack.config.topics.wakeups,
  };
  const ops = Math.max(1, Math.round(CPU_WRITES / EVENTS_PER_OP));
  const created = await Promise.all(Array.from({ length: ops }, () => store.create()));
  const work: Array<() => Promise<void>> = [];
  for (const { operation } of created) {
    for (let i = 1; i < EVENTS_PER_OP; i++) {
      work.push(async () => {
        const metadata = { '@type': 'type.googleapis.com/bench.Progress', percent: i * 10 };
        const written = await store.updateMetadata(operation.name, metadata, {
          emitTime: new Date(Date.now() + i),
          eventId: `cpu-${i}`,
        });
        await announce(messaging, topics, {
          type: 'metadata',
          operation: written.operation,
          timing: { receivedAt: Date.now(), writtenAt: Date.now() },
        });
      });
    }
    work.push(async () => {
      const written = await store.complete(operation.name, { response: RESPONSE }, {});
      await announce(messaging, topics, {
        type: 'succeeded',
        operation: written.operation,
        timing: { receivedAt: Date.now(), writtenAt: Date.now() },
      });
    });
  }
  // Warm the clients' connections first.
  await (work.shift() as () => Promise<void>)();
  const writeCpu = await ownCpuMs(() => pool(work, 4, (w) => w()));
  const writeAndPublishAloneMsPerEvent = writeCpu / work.length;

  // GET through the API against the same read made with the store alone, 16 callers each.
  const [name] = await createOperations(stack.api.url, 1);
  const id = (name as string).slice('operations/'.length);
  const gets = Array.from({ length: CPU_READS }, (_, i) => i);
  const apiPid = stack.api.process.pid as number;
  await pool(gets.slice(0, 200), 16, async () => {
    await httpJson(agent, 'GET', `${stack.api.url}/v1/operations/${id}`);
  });
  const [, getLoop] = await withLoop(stack, () =>
    pool(gets, 16, async () => {
      const res = await httpJson(agent, 'GET', `${stack.api.url}/v1/operations/${id}`);
      if (res.status !== 200) throw new Error(`GET answered ${res.status}`);
    }),
  );
  const apiCpu = getLoop.api?.cpuMs ?? cpuTimeMs(apiPid);
  await pool(gets.slice(0, 200), 16, async () => {
    await store.get(name as string);
  });
  const readCpu = await ownCpuMs(() =>
    pool(gets, 16, async () => {
      await store.get(name as string);
    }),
  );
  await store.close();
  await messaging.close();
  // What the API spends on a request that reads nothing (the framework and the handler: a 404
  // for a path that is not routed), and the same read as above inside a domain, as the
  // functions framework runs every request.
  const [, unroutedLoop] = await withLoop(stack, () =>
    pool(gets, 16, async () => {
      await httpJson(agent, 'GET', `${stack.api.url}/v1/not-routed`);
    }),
  );
  const { NODE_OPTIONS: _probe, ...childEnv } = stack.env;
  const domainCost = await new Promise<{ plainMsPerRead: number; inDomainMsPerRead: number }>(
    (resolveCost, reject) => {
      execFile(
        process.execPath,
        [resolve(ROOT, 'dist/bench/domain-cost.js'), name as string, String(gets.length)],
        { env: { PATH: process.env.PATH ?? '', ...childEnv } },
        (err, stdout) => (err ? reject(err) : resolveCost(JSON.parse(stdout))),
      );
    },
  );
  const frameworkFloor = await frameworkCpuPerRequest(gets.length);
  return {
    writeAndPublishAloneMsPerEvent: round(writeAndPublishAloneMsPerEvent, 3),
    frameworkMsPerRequest: round(frameworkFloor, 3),
    apiMsPerGet: round(apiCpu / gets.length, 3),
    storeReadAloneMsPerGet: round(readCpu / gets.length, 3),
    apiMsPerUnroutedRequest: round((unroutedLoop.api?.cpuMs ?? Number.NaN) / gets.length, 3),
    storeReadInChildMsPerGet: round(domainCost.plainMsPerRead, 3),
    storeReadInDomainMsPerGet: round(domainCost.inDomainMsPerRead, 3),
    getLoop,
  };
}

/** CPU per request of the functions framework serving a function that does nothing. */
async function frameworkCpuPerRequest(count: number): Promise<number> {
  const child = spawn(process.execPath, [resolve(ROOT, 'dist/bench/framework-floor.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolvePort(Number(chunk.toString().trim())));
      child.once('exit', () => reject(new Error('the framework floor exited')));
    });
    const url = `http://127.0.0.1:${port}`;
    const cpu = async () =>
      ((await httpJson(agent, 'GET', `${url}/cpu`)).body as { cpuMs: number }).cpuMs;
    const requests = Array.from({ length: count }, (_, i) => i);
    await pool(requests.slice(0, 200), 16, async () => {
      await httpJson(agent, 'GET', `${url}/`);
    });
    const before = await cpu();
    await pool(requests, 16, async () => {
      await httpJson(agent, 'GET', `${url}/`);
    });
    return ((await cpu()) - before) / count;
  } finally {
    child.kill();
  }
}
