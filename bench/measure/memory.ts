/** 6. Memory: the resident memory of one API instance idle and holding 1,000 and 5,000 waits. */
import { setMaxListeners } from 'node:events';
import type { Stack } from '../../scripts/stack.js';
import { httpJson } from '../http.js';
import type { MemoryFigures } from '../results.js';
import { round, rssMiB } from '../stats.js';
import { agent, createOperations, sleep } from './common.js';

/** Resident memory (MiB) of the API idle and holding 1,000 and 5,000 waits, and per wait (KiB). */
export async function measureWaitMemory(stack: Stack): Promise<MemoryFigures> {
  const pid = stack.api.process.pid as number;
  const idleMiB = round(rssMiB(pid));
  const names = await createOperations(stack.api.url, 5_000);
  const held: Record<number, number> = {};
  for (const count of [1_000, 5_000]) {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const pending = names
      .slice(0, count)
      .map((name) =>
        httpJson(
          agent,
          'POST',
          `${stack.api.url}/v1/operations/${name.slice(11)}:wait`,
          { timeout: '120s' },
          controller.signal,
        ).catch(() => undefined),
      );
    // Every wait has made its one read once the process settles.
    await sleep(Math.max(3_000, count));
    held[count] = round(rssMiB(pid));
    controller.abort();
    await Promise.all(pending);
    await sleep(1_000);
  }
  const with1000WaitsMiB = held[1_000] as number;
  const with5000WaitsMiB = held[5_000] as number;
  return {
    idleMiB,
    with1000WaitsMiB,
    with5000WaitsMiB,
    perWaitKiB: round(((with5000WaitsMiB - idleMiB) * 1024) / 5_000, 2),
  };
}
