/** A minimal JSON-over-HTTP client for the benchmarks, with a keep-alive agent of its own. */
import { Agent, request } from 'node:http';

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export function keepAliveAgent(maxSockets = 10_000): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: 256 });
}

/** One request; a reused keep-alive socket that the server closed meanwhile is retried once. */
export async function httpJson(
  agent: Agent,
  method: string,
  url: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<JsonResponse> {
  try {
    return await once(agent, method, url, body, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (signal?.aborted || (code !== 'ECONNRESET' && code !== 'EPIPE')) throw err;
    return once(agent, method, url, body, signal);
  }
}

function once(
  agent: Agent,
  method: string,
  url: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        agent,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
          : {},
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}
