/**
 * Cross-site requests. A web page can make a browser send a POST (with a `text/plain` or form
 * body, no preflight) or, through a form or `fetch(..., {mode: 'no-cors'})`, other requests to
 * any address, the API on a developer's 127.0.0.1 included. It cannot read the answers (the API
 * sends no CORS headers), but a POST or DELETE would still act. Browsers say where a request
 * comes from: `Sec-Fetch-Site` (same-origin, same-site, cross-site, none) and `Origin` (sent with
 * every POST and DELETE). A state-changing request is therefore refused when `Sec-Fetch-Site`
 * says it comes from another origin, or, from a browser that sends no `Sec-Fetch-Site`, when its
 * `Origin` is not this server's. Requests without these headers (curl, the CLI, the client SDK,
 * Google's client libraries: no browser) are not affected, and reads (GET, HEAD) never are.
 *
 * An `Origin` is this server's own when its host is the request's `Host` (the address the
 * browser connected to). DNS rebinding (a hostile name resolving to 127.0.0.1) makes a hostile
 * page same-origin in the browser's eyes: the `lro console` proxy, which adds the user's token,
 * therefore also checks `Host` itself (bin/console-proxy.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Why a request is refused as cross-site, or undefined when it may go on. */
export function crossSiteRefusal(method: string, headers: IncomingHttpHeaders): string | undefined {
  if (SAFE_METHODS.has(method.toUpperCase())) return undefined;
  const site = single(headers['sec-fetch-site'])?.trim().toLowerCase();
  if (site !== undefined) {
    // The browser's own verdict, which a page cannot forge; it holds behind a proxy that
    // rewrites Host too.
    if (site === 'same-origin' || site === 'none') return undefined;
    return `cross-site request refused: ${method} from a ${JSON.stringify(site.slice(0, 40))} page (Sec-Fetch-Site); this API takes state-changing requests from its own pages and from non-browser clients only`;
  }
  // Browsers without Sec-Fetch-Site (older ones) send Origin with every POST and DELETE.
  const origin = single(headers.origin)?.trim();
  if (origin === undefined) return undefined;
  const host = single(headers.host)?.trim().toLowerCase();
  let originHost: string | undefined;
  try {
    const url = new URL(origin);
    if (url.protocol === 'http:' || url.protocol === 'https:') originHost = url.host;
  } catch {
    // "null" (a sandboxed frame, a file: page) and anything else that is not a URL
  }
  if (originHost === undefined || host === undefined || originHost !== host) {
    return `cross-site request refused: ${method} from origin ${JSON.stringify(origin.slice(0, 200))}, which is not this API's; this API takes state-changing requests from its own pages and from non-browser clients only`;
  }
  return undefined;
}
