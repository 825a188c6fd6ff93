/**
 * The web console's files (docs/contracts.md, contract 7), served by the operations function under
 * /console/ on the API's origin: the page, its style sheet and icon (console/index.html,
 * console/style.css, console/favicon.svg) and the scripts compiled from console/*.ts, all of which
 * `npm run build` writes to dist/console-app/ (and the deploy artifact carries in console-app/).
 * Nothing is fetched from elsewhere; the Content-Security-Policy allows scripts, styles and
 * requests from this origin only, so even text that escaped escaping could not run.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { Code, LroError } from '../../sdk/errors.js';
import { methodNotAllowed } from '../http/io.js';

/**
 * Where the console's files are, relative to this module wherever it runs (never the working
 * directory): dist/console-app beside dist/shared for the compiled modules
 * (dist/shared/service/api/), console-app beside dist/ for the deployed bundle
 * (dist/deploy/dist/functions/). The nearest that holds the page wins.
 */
const APP_DIRS = ['../../console-app/', '../../../console-app/'].map(
  (dir) => new URL(dir, import.meta.url),
);
let appDir: URL | undefined;

function consoleDir(pathname: string): URL {
  appDir ??= APP_DIRS.find((dir) => existsSync(new URL('index.html', dir)));
  if (appDir === undefined) {
    throw new LroError(Code.NOT_FOUND, `console file ${pathname} not found (run "npm run build")`);
  }
  return appDir;
}

/** The page, its style sheet and its icon: the file in the console's directory and its type. */
const FILES: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '': ['index.html', 'text/html; charset=utf-8'],
  'index.html': ['index.html', 'text/html; charset=utf-8'],
  'style.css': ['style.css', 'text/css; charset=utf-8'],
  'favicon.svg': ['favicon.svg', 'image/svg+xml'],
  'favicon.ico': ['favicon.svg', 'image/svg+xml'],
};

/** The scripts the page may load (under app/, relative to the console's directory). */
const SCRIPT =
  /^(console\/[a-z-]+\.js|shared\/sdk\/(progress|request|errors|json-limits|defaults|parent-header)\.js)$/;

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Answers a request under /console (the raw URL path); GET and HEAD only. */
export async function consoleRoute(
  method: string,
  pathname: string,
  res: ServerResponse,
): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') {
    throw methodNotAllowed(method, pathname, ['GET']);
  }
  if (pathname === '/console') {
    reply(res, 301, 'text/plain; charset=utf-8', '', { location: '/console/' });
    return;
  }
  const rest = pathname.slice('/console/'.length);
  const file = Object.hasOwn(FILES, rest) ? FILES[rest] : undefined;
  const script = rest.startsWith('app/') ? rest.slice('app/'.length) : '';
  if (file === undefined && !SCRIPT.test(script)) {
    throw new LroError(Code.NOT_FOUND, `no console file ${pathname}`);
  }
  const [path, type] = file ?? [script, 'text/javascript; charset=utf-8'];
  let body: Buffer;
  try {
    body = await readFile(new URL(path, consoleDir(pathname)));
  } catch (err) {
    if (err instanceof LroError) throw err;
    throw new LroError(Code.NOT_FOUND, `console file ${pathname} not found (run "npm run build")`);
  }
  reply(res, 200, type, body, {});
}

function reply(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string>,
): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-security-policy', CONSOLE_CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cache-control', 'no-cache');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
