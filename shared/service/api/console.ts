/**
 * The web console's files (docs/contracts.md, contract 7), served by the operations function under
 * /console/ on the API's origin: the page and its style sheet (below), and the scripts compiled
 * from console/*.ts (`npm run build` writes them to dist/console-app/). Nothing is fetched from
 * elsewhere; the Content-Security-Policy allows scripts, styles and requests from this origin
 * only, so even text that escaped escaping could not run.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { Code, LroError } from '../../sdk/errors.js';
import { methodNotAllowed } from '../http/io.js';

/** Where the compiled console scripts are: dist/console-app, beside dist/shared. */
const APP_DIR = new URL('../../console-app/', import.meta.url);

/** The scripts the page may load (relative to APP_DIR). */
const SCRIPT = /^(console\/[a-z-]+\.js|shared\/sdk\/progress\.js)$/;

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

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Operations · cloud-lro console</title>
<link rel="stylesheet" href="style.css">
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<script type="module" src="app/console/main.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">cloud-lro</span>
  <nav aria-label="Sections">
    <a href="./" data-nav="operations">Operations</a>
    <a href="./?view=dead-letters" data-nav="dead-letters">Dead letters</a>
  </nav>
</header>
<main id="main" tabindex="-1"><p class="muted">Loading…</p><noscript>The console needs JavaScript.</noscript></main>
<div id="status" role="status" aria-live="polite"></div>
<dialog id="confirm" aria-labelledby="confirm-text">
  <form method="dialog">
    <p id="confirm-text"></p>
    <div class="actions">
      <button value="cancel" autofocus>Keep</button>
      <button value="ok" class="danger" id="confirm-ok">Confirm</button>
    </div>
  </form>
</dialog>
</body>
</html>
`;

/** The tab's icon: a ring three-quarters drawn, as an operation under way. */
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="12" fill="none" stroke="#d0d7de" stroke-width="5"/><path d="M16 4a12 12 0 1 1-12 12" fill="none" stroke="#0b5cad" stroke-width="5"/></svg>`;

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff;
  --panel: #f6f8fa; --accent: #0b5cad; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9da7b3; --line: #30363d;
  --bg: #0d1117; --panel: #161b22; --accent: #58a6ff; --ok: #3fb950; --bad: #f85149; --warn: #d29922; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
h1[tabindex="-1"]:focus { outline: none; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; }
.top { display: flex; gap: 24px; align-items: center; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
.brand { font-weight: 700; }
.top nav { display: flex; gap: 16px; }
.top nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
main { padding: 16px 20px; max-width: 1240px; margin: 0 auto; }
h1 { font-size: 1.35rem; margin: 0 0 12px; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 20px 0 8px; }
.muted { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end; margin-bottom: 12px; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: 2px; }
input, select, button { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button { cursor: pointer; background: var(--panel); }
button.danger { border-color: var(--bad); color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
td.name { overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: .88rem; }
.state { display: inline-block; font-size: .78rem; font-weight: 700; padding: 1px 7px; border-radius: 10px; border: 1px solid currentColor; }
.state.RUNNING { color: var(--accent); } .state.SUCCEEDED { color: var(--ok); }
.state.FAILED { color: var(--bad); } .state.CANCELLED { color: var(--warn); }
.progress { display: flex; gap: 8px; align-items: center; min-width: 180px; }
.progress progress { flex: 1; height: 12px; accent-color: var(--accent); }
.progress .pct { font-variant-numeric: tabular-nums; min-width: 3.2em; text-align: right; }
#summary .progress { max-width: 640px; }
.tree .progress { display: inline-flex; width: 280px; min-width: 0; vertical-align: middle; margin-left: 6px; }
.progress .msg { color: var(--muted); font-size: .85rem; overflow-wrap: anywhere; }
.pager { display: flex; gap: 12px; margin-top: 12px; align-items: center; }
dl.fields { display: grid; grid-template-columns: minmax(8em, max-content) 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.fields dt { color: var(--muted); } dl.fields dd { margin: 0; overflow-wrap: anywhere; }
pre.json { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow: auto; max-height: 420px; font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.actions { display: flex; gap: 10px; flex-wrap: wrap; margin: 12px 0; }
ul.tree { list-style: none; padding-left: 18px; margin: 4px 0; border-left: 1px dotted var(--line); }
ul.tree.root { padding-left: 0; border: 0; }
ul.tree li { margin: 4px 0; }
.error { color: var(--bad); }
.list-meta { display: flex; gap: 16px; flex-wrap: wrap; align-items: baseline; font-size: .85rem; }
.list-meta p { margin: 0 0 6px; }
td time, dd time { white-space: nowrap; }
.fresh { color: var(--ok); } .stale { color: var(--bad); font-weight: 600; }
ol.timeline { list-style: none; padding-left: 14px; margin: 4px 0; border-left: 2px solid var(--line); }
ol.timeline li { margin: 3px 0; overflow-wrap: anywhere; }
ol.timeline li time { display: inline-block; min-width: 7.5em; color: var(--muted); }
ol.timeline li[data-outcome="DUPLICATE"], ol.timeline li[data-outcome="STALE"], ol.timeline li[data-outcome="IGNORED"] { color: var(--warn); }
ol.timeline li[data-outcome="HEARTBEAT"] { color: var(--muted); }
.event-id { font-family: ui-monospace, monospace; font-size: .8rem; }
dialog { border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); max-width: min(520px, 92vw); }
dialog::backdrop { background: rgb(0 0 0 / .35); }
#status { position: fixed; bottom: 10px; right: 14px; font-size: .85rem; color: var(--muted); }
@media (max-width: 700px) {
  main { padding: 12px; }
  table.responsive thead { display: none; }
  table.responsive tr { display: block; border-bottom: 1px solid var(--line); padding: 6px 0; }
  table.responsive td { display: block; border: 0; padding: 2px 0; }
  table.responsive td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; }
  dl.fields { grid-template-columns: 1fr; } dl.fields dd { margin-bottom: 6px; }
}
`;

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
  if (rest === '' || rest === 'index.html') {
    reply(res, 200, 'text/html; charset=utf-8', PAGE, {});
    return;
  }
  if (rest === 'favicon.svg' || rest === 'favicon.ico') {
    reply(res, 200, 'image/svg+xml', FAVICON, {});
    return;
  }
  if (rest === 'style.css') {
    reply(res, 200, 'text/css; charset=utf-8', STYLE, {});
    return;
  }
  const script = rest.startsWith('app/') ? rest.slice('app/'.length) : '';
  if (!SCRIPT.test(script)) throw new LroError(Code.NOT_FOUND, `no console file ${pathname}`);
  let body: Buffer;
  try {
    body = await readFile(new URL(script, APP_DIR));
  } catch {
    throw new LroError(Code.NOT_FOUND, `console file ${pathname} not found (run "npm run build")`);
  }
  reply(res, 200, 'text/javascript; charset=utf-8', body, {});
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
