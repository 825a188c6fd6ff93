/**
 * Run by the benchmark as a child process (`node dist/bench/domain-cost.js <operation> <reads>`,
 * the stack's environment): the CPU of one store read, first in a plain process, then with the
 * `domain` module in use as the functions framework uses it (it runs every request inside a
 * domain, which turns on promise hooks for the whole process). Prints JSON.
 */

import { loadConfig } from '../shared/service/runtime/config.js';
import { BigtableOperationStore } from '../shared/service/store/bigtable/operation-store.js';

const [name, count] = [process.argv[2] as string, Number(process.argv[3] ?? '2000')];
const store = new BigtableOperationStore(loadConfig());

async function cpuPerRead(wrap: (fn: () => Promise<void>) => Promise<void>): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await wrap(async () => {
        await store.get(name);
      });
    }
  };
  // Warm the connection and the code first.
  for (let i = 0; i < 200; i++) await store.get(name);
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: 16 }, worker));
  const used = process.cpuUsage(before);
  next = 0;
  return (used.user + used.system) / 1000 / count;
}

const plain = await cpuPerRead((fn) => fn());
const domain = await import('node:domain');
const inDomain = await cpuPerRead(
  (fn) =>
    new Promise<void>((resolve, reject) => {
      const d = domain.create();
      d.on('error', reject);
      d.run(() => {
        process.nextTick(() => {
          fn().then(resolve, reject);
        });
      });
    }),
);
await store.close();
process.stdout.write(`${JSON.stringify({ plainMsPerRead: plain, inDomainMsPerRead: inDomain })}\n`);
