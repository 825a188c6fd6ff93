/**
 * Routes and their matching, apart from what a request goes through (lifecycle.ts) and from the
 * routes themselves (the API's table: api/api.ts). A route names its method and path template
 * and the zod schemas of its query and body; the request lifecycle validates both with them and
 * hands the parsed values to the handler, and docs/openapi.yaml is generated from the same
 * entries, so a route is described by the schemas that validate it.
 *
 * Path templates compile to regular expressions once; a path resolves to the routes of the first
 * template it matches (one per method), so that a known path with another method is "method not
 * allowed" rather than "not found".
 */
import type { ServerResponse } from 'node:http';
import type { z } from 'zod';
import { Code, LroError } from '../../sdk/errors.js';
import type { Logger } from '../../sdk/log.js';
import type { ApiRequest } from './io.js';

/** One route; `S` is what the handlers are given to work with (the services). */
export interface Route<S, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'DELETE';
  /**
   * Path template. A `{param}` is one path segment without `/` or `:`; under /v1/operations/,
   * `{id}` is an operation ID and the handler gets the operation's name as `ctx.name`.
   */
  path: string;
  /**
   * Schemas of path parameters other than an operation's `{id}` (documentation: the handler
   * validates them).
   */
  params?: Record<string, z.ZodType>;
  /** The method's name (OpenAPI operationId): google.longrunning's where there is one. */
  operationId: string;
  summary: string;
  query?: z.ZodType<Q, unknown>;
  /** Named in error messages: "invalid <queryName>: ..." (default "query"). */
  queryName?: string;
  body?: z.ZodType<B, unknown>;
  /** Named in error messages: "invalid <bodyName>: ..." (default "request body"). */
  bodyName?: string;
  /** Headers the route reads, with their meaning (documentation). */
  headers?: Record<string, string>;
  /** Headers the 200 reply may carry, with their meaning (documentation). */
  responseHeaders?: Record<string, string>;
  /** The 200 reply: a schema, or server-sent events. */
  response: z.ZodType | { eventStream: string };
  handler: (ctx: Context<S, Q, B>) => Promise<void>;
}

/** What a handler is given: the request, its parsed input, and the services. */
export interface Context<S, Q = unknown, B = unknown> {
  req: ApiRequest;
  res: ServerResponse;
  /** The query, parsed by the route's schema. */
  query: Q;
  /** The JSON body, parsed by the route's schema. */
  body: B;
  /** Path parameters, as they appear in the path. */
  params: Record<string, string>;
  /** The operation's name, for routes under /v1/operations/{id} (else empty). */
  name: string;
  services: S;
  signal: AbortSignal;
  log: Logger;
}

export interface Match<S> {
  /** The routes of the matched path template, one per method. */
  routes: Route<S>[];
  params: Record<string, string>;
  /** The operation name for routes under /v1/operations/{id}. */
  name?: string;
}

/** Finds the routes of a path; throws INVALID_ARGUMENT for a path that cannot be decoded. */
export type Resolve<S> = (pathname: string) => Match<S> | undefined;

interface CompiledRoute<S> {
  route: Route<S>;
  pattern: RegExp;
  params: string[];
}

/**
 * Compiles a routing table, in matching order. `nameOf` turns the `{id}` of a template under
 * /v1/operations/ into the operation's name (it throws for an ID that cannot be one).
 */
export function compileRoutes<S>(
  routes: readonly Route<S>[],
  nameOf: (id: string) => string,
): Resolve<S> {
  const compiled: CompiledRoute<S>[] = routes.map((r) => {
    const params: string[] = [];
    const source = r.path
      .split(/(\{[A-Za-z]+\})/)
      .map((part) => {
        const param = /^\{([A-Za-z]+)\}$/.exec(part);
        if (!param) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(param[1] as string);
        return '([^/:]*)';
      })
      .join('');
    return { route: r, pattern: new RegExp(`^${source}$`), params };
  });
  /**
   * The routes of a path (one per method), or undefined when no template matches. Accepts `:`
   * percent-encoded (`%3A`) too, and a trailing `/`.
   */
  return (pathname) => {
    let path: string;
    try {
      path = decodeURIComponent(pathname);
    } catch {
      throw new LroError(Code.INVALID_ARGUMENT, 'malformed percent-encoding in the path');
    }
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    let template: string | undefined;
    const match: Match<S> = { routes: [], params: {} };
    for (const entry of compiled) {
      if (template !== undefined) {
        if (entry.route.path === template) match.routes.push(entry.route);
        continue;
      }
      const found = entry.pattern.exec(path);
      if (!found) continue;
      template = entry.route.path;
      match.routes.push(entry.route);
      entry.params.forEach((param, i) => {
        match.params[param] = found[i + 1] as string;
      });
    }
    if (template === undefined) return undefined;
    const id = match.params.id;
    if (id !== undefined && template.startsWith('/v1/operations/')) match.name = nameOf(id);
    return match;
  };
}
