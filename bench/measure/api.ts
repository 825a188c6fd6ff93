/**
 * 5. API throughput: autocannon against GET and create, beside a bare HTTP server's answering
 * the same body (once, after the runs).
 */
import { createServer } from 'node:http';
import autocannon from 'autocannon';
import type { Stack } from '../../scripts/stack.js';
import { freePort } from '../../shared/local/emulators.js';
import type { ApiFigures } from '../results.js';
import { round } from '../stats.js';
import { createOperations } from './common.js';

async function cannon(options: autocannon.Options): Promise<ApiFigures> {
  const result = await autocannon({ connections: 32, duration: 5, ...options });
  return {
    requestsPerSecond: round(result.requests.average),
    latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

export async function measureApi(stack: Stack) {
  const [name] = await createOperations(stack.api.url, 1);
  const id = (name as string).slice('operations/'.length);
  const get = await cannon({ url: `${stack.api.url}/v1/operations/${id}` });
  const create = await cannon({
    url: `${stack.api.url}/v1/operations`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  const body = JSON.stringify({ name, done: false });
  const bare = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  const port = await freePort();
  await new Promise<void>((r) => bare.listen(port, '127.0.0.1', r));
  const baseline = await cannon({ url: `http://127.0.0.1:${port}/` });
  await new Promise<void>((r) => bare.close(() => r()));
  return { get, create, bareHttpBaseline: baseline };
}
