/**
 * `lro console`: a proxy on 127.0.0.1 in front of the API that adds the person's ID token to every
 * request, so that a browser can open the console of a deployed API (whose functions require an
 * ID token) at a local address. Bodies stream both ways, so the console's live updates (server-
 * sent events of :watch) pass through as they come. Against a local API no token is added.
 *
 * Since it acts as the person, it answers its own pages only: a request whose `Host` is not
 * 127.0.0.1:PORT or localhost:PORT (a hostile name resolved to 127.0.0.1: DNS rebinding) is
 * refused, and so is a state-changing request that a browser says comes from another origin
 * (`Origin`, `Sec-Fetch-Site`: shared/service/http/cross-site.ts), both with 403 before the token is
 * added.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { crossSiteRefusal } from '../shared/service/http/cross-site.js';

export interface ConsoleProxyOptions {
  /** The API's base URL. */
  target: string;
  /** Headers added to every request (an ID token); called per request. */
  headers: () => Promise<Record<string, string>>;
  /** Local port; 0 picks a free one. */
  port?: number;
}

export interface ConsoleProxy {
  /** The console's local address: http://127.0.0.1:PORT/console/ */
  consoleUrl: string;
  /** The proxy's base URL. */
  url: string;
  close(): Promise<void>;
}

/** Request headers that describe one hop and are not forwarded. */
const HOP_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export async function startConsoleProxy(options: ConsoleProxyOptions): Promise<ConsoleProxy> {
  const target = new URL(options.target);
  const basePath = target.pathname.replace(/\/+$/, '');
  const transport = target.protocol === 'https:' ? https : http;
  /** The Host values of the proxy's own address, known once it listens. */
  const ownHosts = new Set<string>();
  const server = http.createServer((req, res) => {
    const host = (req.headers.host ?? '').trim().toLowerCase();
    const refusal = !ownHosts.has(host)
      ? `Host ${JSON.stringify(host.slice(0, 200))} is not this proxy's (${[...ownHosts].join(' or ')}): requests through another name are refused`
      : crossSiteRefusal(req.method ?? 'GET', req.headers);
    if (refusal) {
      req.resume();
      const body = JSON.stringify({
        error: { code: 403, message: refusal, status: 'PERMISSION_DENIED' },
      });
      res.writeHead(403, { 'content-type': 'application/json; charset=utf-8' });
      res.end(body);
      return;
    }
    void forward(req, res).catch((err: unknown) => fail(res, err));
  });

  async function forward(req: IncomingMessage, res: ServerResponse) {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_HEADERS.has(name)) headers[name] = value;
    }
    // The browser talks to 127.0.0.1 (its origin was checked above); the API must see its own
    // origin, or none.
    delete headers.origin;
    delete headers.referer;
    Object.assign(headers, await options.headers());
    const upstream = transport.request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port || undefined,
        method: req.method,
        path: basePath + (req.url ?? '/'),
        headers: { ...headers, host: target.host },
      },
      (answer) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers)) {
          if (value !== undefined && !HOP_HEADERS.has(name)) out[name] = value;
        }
        res.writeHead(answer.statusCode ?? 502, out);
        res.flushHeaders();
        answer.pipe(res);
        res.once('close', () => answer.destroy());
      },
    );
    upstream.once('error', (err) => fail(res, err));
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  function fail(res: ServerResponse, err: unknown) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = `the API at ${target.origin} cannot be reached: ${err instanceof Error ? err.message : String(err)}`;
    const body = JSON.stringify({ error: { code: 502, message, status: 'UNAVAILABLE' } });
    res.writeHead(502, { 'content-type': 'application/json; charset=utf-8' });
    res.end(body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: options.port ?? 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  ownHosts.add(`127.0.0.1:${port}`);
  ownHosts.add(`localhost:${port}`);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    consoleUrl: `${url}/console/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
