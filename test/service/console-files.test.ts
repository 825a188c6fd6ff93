/**
 * The console's own files as the operations function serves them: the page, style sheet and icon
 * are console/index.html, console/style.css and console/favicon.svg byte for byte, copied by the
 * build beside the compiled scripts and found relative to the module that serves them (the
 * function runs here from another working directory), each with its type, the console's
 * Content-Security-Policy, nosniff, no referrer and no-cache; every module the page loads is
 * served and none is Node.js's; anything else under /console/ is a 404 and only GET and HEAD are
 * allowed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv } from '../support/env.js';
import { ROOT, type RunningFunction, startFunction } from '../support/functions.js';

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

let cwd: string;
let api: RunningFunction;

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'lro-console-cwd-'));
  api = await startFunction('operations', testEnv(), undefined, { source: 'build', cwd });
}, 120_000);

afterAll(async () => {
  await api?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

const source = (file: string) => readFileSync(join(ROOT, 'console', file), 'utf8');

async function get(path: string, method = 'GET') {
  const res = await fetch(`${api.url}${path}`, { method, redirect: 'manual' });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

function expectConsoleHeaders(headers: Headers, type: string, body: string): void {
  expect({
    type: headers.get('content-type'),
    csp: headers.get('content-security-policy'),
    nosniff: headers.get('x-content-type-options'),
    referrer: headers.get('referrer-policy'),
    cache: headers.get('cache-control'),
    length: headers.get('content-length'),
  }).toEqual({
    type,
    csp: CSP,
    nosniff: 'nosniff',
    referrer: 'no-referrer',
    cache: 'no-cache',
    length: String(Buffer.byteLength(body)),
  });
}

describe('console files', () => {
  it.each([
    ['/console/', 'index.html', 'text/html; charset=utf-8'],
    ['/console/index.html', 'index.html', 'text/html; charset=utf-8'],
    ['/console/style.css', 'style.css', 'text/css; charset=utf-8'],
    ['/console/favicon.svg', 'favicon.svg', 'image/svg+xml'],
    ['/console/favicon.ico', 'favicon.svg', 'image/svg+xml'],
  ])('serves %s from console/%s', async (path, file, type) => {
    const reply = await get(path);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe(source(file));
    expectConsoleHeaders(reply.headers, type, reply.body);
  });

  it('serves the compiled scripts the page loads, with the same headers', async () => {
    const page = await get('/console/');
    const src = /<script type="module" src="([^"]+)"/.exec(page.body)?.[1];
    expect(src).toBe('app/console/main.js');
    const script = await get(`/console/${src}`);
    expect(script.status).toBe(200);
    expect(script.body).toBe(readFileSync(join(ROOT, 'dist/console-app/console/main.js'), 'utf8'));
    expectConsoleHeaders(script.headers, 'text/javascript; charset=utf-8', script.body);
    const stylesheet = /<link rel="stylesheet" href="([^"]+)"/.exec(page.body)?.[1];
    expect((await get(`/console/${stylesheet}`)).body).toBe(source('style.css'));
  });

  it('serves every module the page loads, none of them of Node.js', async () => {
    const seen = new Set<string>();
    const visit = async (path: string): Promise<void> => {
      if (seen.has(path)) return;
      seen.add(path);
      const script = await get(`/console/${path}`);
      expect(script.status, path).toBe(200);
      for (const [, specifier] of script.body.matchAll(/(?:from|import)\s*'([^']+)'/g)) {
        expect(specifier, `${path} imports ${specifier}`).toMatch(/^\.\.?\//);
        await visit(new URL(specifier as string, `http://x/${path}`).pathname.slice(1));
      }
    };
    await visit('app/console/main.js');
    expect(seen).toContain('app/shared/sdk/request.js');
    expect(seen).toContain('app/shared/sdk/errors.js');
  });

  it('answers HEAD with the headers and no body', async () => {
    const reply = await get('/console/style.css', 'HEAD');
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('');
    expectConsoleHeaders(reply.headers, 'text/css; charset=utf-8', source('style.css'));
  });

  it('redirects /console to /console/', async () => {
    const reply = await get('/console');
    expect([reply.status, reply.headers.get('location')]).toEqual([301, '/console/']);
    expect(reply.headers.get('content-security-policy')).toBe(CSP);
  });

  it.each([
    '/console/style.css.map',
    '/console/tsconfig.json',
    '/console/app/index.html',
    '/console/app/shared/sdk/client.js',
    '/console/constructor',
    '/console/app/console/main.ts',
  ])('answers %s with NOT_FOUND', async (path) => {
    const reply = await get(path);
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.body)).toMatchObject({ error: { status: 'NOT_FOUND' } });
  });

  it('allows GET and HEAD only', async () => {
    const reply = await get('/console/style.css', 'POST');
    expect(reply.status).toBe(405);
  });
});
