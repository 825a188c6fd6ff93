/** What the measurements share: one keep-alive agent, progress lines, and small load helpers. */
import type { Operation } from '../../shared/sdk/model.js';
import { httpJson, keepAliveAgent } from '../http.js';

/** The benchmark's HTTP agent (its callers' sockets); `bench/run.ts` destroys it at the end. */
export const agent = keepAliveAgent();
/** Makes this invocation's topic, subscription and table names unique. */
export const suffix = `${Date.now().toString(36)}`;
/** The response every benchmark operation succeeds with. */
export const RESPONSE = { '@type': 'type.googleapis.com/bench.Result', ok: true };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A progress line on stderr (stdout carries the report). */
export function say(line: string) {
  process.stderr.write(`${line}\n`);
}

/** Creates `count` operations through the API, 50 at a time; their names. */
export async function createOperations(api: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () =>
        httpJson(agent, 'POST', `${api}/v1/operations`, {}),
      ),
    );
    for (const res of batch) {
      if (res.status !== 200)
        throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
      names.push((res.body as Operation).name);
    }
  }
  return names;
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}
