/**
 * A web page cannot act through the API or through `lro console`: state-changing requests that a
 * browser marks as coming from another origin (Origin, Sec-Fetch-Site) are refused with 403 and
 * change nothing, the proxy answers only requests addressed to its own Host (DNS rebinding), and
 * clients without a browser (curl, the CLI, the SDK) and the console's own pages keep working.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleProxy, startConsoleProxy } from '../../bin/console-proxy.js';
import { type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

interface Answer {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** A request with exactly these headers (Host and Origin included, which fetch would not send). */
function send(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body = '',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method,
        headers: body === '' ? headers : { 'content-length': String(body.length), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.once('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

function expect403(answer: Answer, fragment: string) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(403);
  expect(answer.body.error).toMatchObject({ code: 403, status: 'PERMISSION_DENIED' });
  expect(answer.body.error.message).toContain(fragment);
}

let s: OperationsStack;
let proxy: ConsoleProxy;
/** Headers the proxy adds, as it adds the person's ID token. */
const tokenHeaders = { authorization: 'Bearer the-users-id-token' };

beforeAll(async () => {
  s = await startOperationsStack();
  proxy = await startConsoleProxy({ target: s.url, headers: async () => tokenHeaders });
});

afterAll(async () => {
  await proxy?.close();
  await s?.stop();
});

async function running(id: string): Promise<string> {
  const created = await send(
    s.url,
    'POST',
    '/v1/operations',
    { 'content-type': 'application/json' },
    JSON.stringify({ operationId: id }),
  );
  expect(created.status).toBe(200);
  return created.body.name as string;
}

async function cancelRequested(name: string): Promise<boolean> {
  return (await s.store.get(name)).cancelRequestTime !== undefined;
}

describe('the API', () => {
  const host = () => new URL(s.url).host;

  it('refuses cross-site creates, cancels and deletes with 403, and they change nothing', async () => {
    const planted = await send(
      s.url,
      'POST',
      '/v1/operations',
      { origin: 'http://evil.example', 'content-type': 'text/plain' },
      '{"operationId":"csrf-planted"}',
    );
    expect403(planted, 'http://evil.example');
    expect((await send(s.url, 'GET', '/v1/operations/csrf-planted')).status).toBe(404);

    const name = await running('csrf-target');
    expect403(
      await send(
        s.url,
        'POST',
        `/v1/${name}:cancel`,
        { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
        '{}',
      ),
      'Sec-Fetch-Site',
    );
    expect403(
      await send(s.url, 'POST', `/v1/${name}:cancel`, { 'sec-fetch-site': 'same-site' }, '{}'),
      'same-site',
    );
    expect403(await send(s.url, 'DELETE', `/v1/${name}`, { origin: 'null' }), 'origin "null"');
    expect403(
      await send(s.url, 'POST', '/v1/deadLetters/x:replay', { origin: 'https://evil.example' }),
      'https://evil.example',
    );
    expect(await cancelRequested(name)).toBe(false);
    expect((await send(s.url, 'GET', `/v1/${name}`)).status).toBe(200);
  });

  it('accepts clients without a browser, and pages of its own origin', async () => {
    const name = await running('csrf-own');
    // curl, the CLI, the SDKs: no Origin, no Sec-Fetch-Site.
    expect((await send(s.url, 'POST', `/v1/${name}:wait`, {}, '{"timeout":"0s"}')).status).toBe(
      200,
    );
    // The console served by the API itself.
    const own = await send(
      s.url,
      'POST',
      `/v1/${name}:cancel`,
      {
        origin: `http://${host()}`,
        'sec-fetch-site': 'same-origin',
        'content-type': 'application/json',
      },
      '{}',
    );
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    expect(await cancelRequested(name)).toBe(true);
    // The console behind a proxy that rewrites Host: the browser's Sec-Fetch-Site decides.
    const rewritten = await send(
      s.url,
      'POST',
      `/v1/${name}:cancel`,
      { origin: 'https://lro.example.com', 'sec-fetch-site': 'same-origin' },
      '{}',
    );
    expect(rewritten.status, JSON.stringify(rewritten.body)).toBe(200);
    // A request typed in the address bar or a bookmark.
    const typed = await send(s.url, 'DELETE', `/v1/${name}`, { 'sec-fetch-site': 'none' });
    expect(typed.status).toBe(200);
  });

  it('answers cross-site reads, without CORS headers (a page cannot read them)', async () => {
    const read = await send(s.url, 'GET', '/v1/operations?pageSize=1', {
      origin: 'http://evil.example',
      'sec-fetch-site': 'cross-site',
    });
    expect(read.status).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await send(s.url, 'OPTIONS', '/v1/operations', {
      origin: 'http://evil.example',
      'access-control-request-method': 'DELETE',
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('lro console proxy', () => {
  const port = () => new URL(proxy.url).port;

  it('refuses a Host that is not its own (DNS rebinding), for reads and deletes alike', async () => {
    const name = await running('rebind-target');
    for (const host of [
      `evil.example:${port()}`,
      'evil.example',
      `127.0.0.1:${Number(port()) + 1}`,
    ]) {
      expect403(await send(proxy.url, 'GET', '/v1/deadLetters', { host }), 'is not this proxy');
      expect403(await send(proxy.url, 'DELETE', `/v1/${name}`, { host }), 'is not this proxy');
    }
    expect((await send(s.url, 'GET', `/v1/${name}`)).status).toBe(200);
  });

  it('refuses cross-site cancels, creates and deletes before adding the token', async () => {
    const name = await running('proxy-csrf-target');
    expect403(
      await send(
        proxy.url,
        'POST',
        `/v1/${name}:cancel`,
        { origin: 'http://evil.example', 'content-type': 'text/plain' },
        '{}',
      ),
      'http://evil.example',
    );
    expect403(
      await send(
        proxy.url,
        'POST',
        '/v1/operations',
        { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
        '{"operationId":"proxy-csrf-planted"}',
      ),
      'Sec-Fetch-Site',
    );
    expect403(
      await send(proxy.url, 'DELETE', `/v1/${name}`, {
        origin: `http://127.0.0.1:${Number(port()) + 1}`,
      }),
      'not this API',
    );
    expect(await cancelRequested(name)).toBe(false);
    expect((await send(s.url, 'GET', '/v1/operations/proxy-csrf-planted')).status).toBe(404);
  });

  it("serves the console's own pages under 127.0.0.1 and localhost", async () => {
    const page = await send(proxy.url, 'GET', '/console/');
    expect(page.status).toBe(200);
    const viaLocalhost = await send(proxy.url, 'GET', '/v1/operations?pageSize=1', {
      host: `localhost:${port()}`,
    });
    expect(viaLocalhost.status).toBe(200);
    const name = await running('proxy-own');
    for (const origin of [proxy.url, `http://localhost:${port()}`]) {
      const host = new URL(origin).host;
      const cancelled = await send(
        proxy.url,
        'POST',
        `/v1/${name}:cancel`,
        { host, origin, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
        '{}',
      );
      expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    }
    expect(await cancelRequested(name)).toBe(true);
  });
});
