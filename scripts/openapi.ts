/**
 * The OpenAPI 3.1 description of the HTTP API, built from the routing table (`apiRoutes` in
 * shared/service/api/api.ts) and the zod schemas that validate each route's query and body: one source of
 * truth. `npm run openapi` writes it to docs/openapi.yaml; test/service/openapi.test.ts fails when the
 * file is stale, when it is not valid OpenAPI, or when a route and the file disagree.
 *
 * Request schemas are converted as the API reads them (zod's input side: defaults optional,
 * durations as strings); replies as it writes them (the output side). Schemas named in
 * `components` are referenced, every other one is inlined. Errors are Google's JSON error body.
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { defaults } from '../shared/sdk/defaults.js';
import { DurationMs } from '../shared/sdk/duration.js';
import { Code } from '../shared/sdk/errors.js';
import {
  AnySchema,
  ListOperationsResponseSchema,
  OperationIdSchema,
  OperationNameSchema,
  OperationNodeSchema,
  OperationSchema,
  StatusSchema,
} from '../shared/sdk/model.js';
import { type ApiRoute, apiRoutes } from '../shared/service/api/api.js';
import { ACCEPTED_CONTENT_TYPES } from '../shared/service/http/io.js';

type JsonSchema = Record<string, unknown>;

const codeNames = Object.keys(Code).filter((key) => Number.isNaN(Number(key))) as [
  string,
  ...string[],
];

/** Google's JSON error body, as every error reply carries it. */
export const ErrorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.number().int().describe('The HTTP status of the reply.'),
    message: z.string().describe('What went wrong, for a developer.'),
    status: z.enum(codeNames).describe('The google.rpc.Code name.'),
    details: z.array(AnySchema).optional(),
  }),
});

/** Schemas described once under components/schemas and referenced by name. */
const components: [string, z.ZodType][] = [
  ['Any', AnySchema],
  ['Status', StatusSchema],
  ['Operation', OperationSchema],
  ['ListOperationsResponse', ListOperationsResponseSchema],
  ['OperationNode', OperationNodeSchema],
  ['Error', ErrorBodySchema],
];

const OPERATION_NAME_PATTERN = `^operations/${OperationIdSchemaPattern()}`;

function OperationIdSchemaPattern(): string {
  const json = z.toJSONSchema(OperationIdSchema) as JsonSchema;
  return String(json.pattern).replace(/^\^/, '');
}

/** What JSON Schema cannot say of a refinement or a transform, said by hand. */
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  if (ctx.zodSchema === OperationNameSchema) {
    ctx.jsonSchema.pattern = OPERATION_NAME_PATTERN;
    ctx.jsonSchema.description ??= 'An operation name, "operations/{id}".';
  }
  if (ctx.zodSchema === DurationMs || ctx.zodSchema === inputOf(DurationMs)) {
    ctx.jsonSchema.pattern = '^\\d{1,12}(\\.\\d{1,9})?s$';
    ctx.jsonSchema.description ??= 'A google.protobuf.Duration in JSON, e.g. "30s" or "1.5s".';
  }
}

function inputOf(schema: z.ZodType): unknown {
  const def = (schema as unknown as { _zod: { def: { in?: unknown } } })._zod.def;
  return def.in;
}

function registry(): z.core.$ZodRegistry<{ id: string }> {
  const reg = z.registry<{ id: string }>();
  for (const [id, schema] of components) reg.add(schema, { id });
  return reg;
}

function componentRef(id: string): JsonSchema {
  return { $ref: `#/components/schemas/${id}` };
}

function clean(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** `$defs` refs point at components; every $def must be a component described the same way. */
function toComponents(schema: JsonSchema, described: Record<string, JsonSchema>): JsonSchema {
  const { $defs, ...rest } = clean(schema);
  for (const [id, def] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) {
    const known = described[id];
    if (!known) throw new Error(`schema ${id} is referenced but not a component`);
    if (JSON.stringify(known) !== relinked(clean(def))) {
      throw new Error(`schema ${id} differs between requests and replies; inline it instead`);
    }
  }
  return JSON.parse(relinked(rest));
}

function relinked(schema: JsonSchema): string {
  return JSON.stringify(schema).replaceAll('"#/$defs/', '"#/components/schemas/');
}

function convert(
  schema: z.ZodType,
  io: 'input' | 'output',
  described: Record<string, JsonSchema>,
): JsonSchema {
  const id = components.find(([, s]) => s === schema)?.[0];
  if (id) return componentRef(id);
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    metadata: registry(),
    override: override as never,
  }) as JsonSchema;
  return toComponents(json, described);
}

function pathParameters(route: ApiRoute): JsonSchema[] {
  const names = [...route.path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1] as string);
  return names.map((name) => {
    const given = route.params?.[name];
    const isOperationId = !given && name === 'id' && route.path.startsWith('/v1/operations/');
    const schema = given ?? (isOperationId ? OperationIdSchema : z.string());
    return {
      name,
      in: 'path',
      required: true,
      ...(isOperationId
        ? { description: 'The operation ID (its name without "operations/").' }
        : {}),
      schema: clean(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema),
    };
  });
}

function queryParameters(route: ApiRoute, described: Record<string, JsonSchema>): JsonSchema[] {
  if (!route.query) return [];
  const json = convert(route.query, 'input', described);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: 'query',
      required: required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function headerParameters(route: ApiRoute): JsonSchema[] {
  return Object.entries(route.headers ?? {}).map(([name, description]) => ({
    name,
    in: 'header',
    required: false,
    description,
    schema: { type: 'string' },
  }));
}

function operationOf(route: ApiRoute, described: Record<string, JsonSchema>): JsonSchema {
  const parameters = [
    ...pathParameters(route),
    ...queryParameters(route, described),
    ...headerParameters(route),
  ];
  const ok =
    'eventStream' in route.response
      ? {
          description: route.response.eventStream,
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        }
      : {
          description: 'OK',
          ...(route.responseHeaders
            ? {
                headers: Object.fromEntries(
                  Object.entries(route.responseHeaders).map(([name, description]) => [
                    name,
                    { description, schema: { type: 'string', format: 'date-time' } },
                  ]),
                ),
              }
            : {}),
          content: {
            'application/json': { schema: convert(route.response, 'output', described) },
          },
        };
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body ? { requestBody: requestBodyOf(route, route.body, described) } : {}),
    responses: {
      '200': ok,
      '400': { $ref: '#/components/responses/BadRequest' },
      ...(route.method === 'GET' ? {} : { '403': { $ref: '#/components/responses/CrossSite' } }),
      '404': { $ref: '#/components/responses/NotFound' },
      ...(route.body
        ? {
            '413': { $ref: '#/components/responses/TooLarge' },
            '415': { $ref: '#/components/responses/UnsupportedMediaType' },
          }
        : {}),
      default: { $ref: '#/components/responses/Error' },
    },
  };
}

/**
 * A route's body: one schema, described once under components (`{operationId}Request`), for
 * every content type the API reads as JSON.
 */
function requestBodyOf(
  route: ApiRoute,
  body: z.ZodType,
  described: Record<string, JsonSchema>,
): JsonSchema {
  const id = components.find(([, s]) => s === body)?.[0] ?? `${route.operationId}Request`;
  described[id] ??= convert(body, 'input', described);
  return {
    required: false,
    description:
      'JSON; an empty body reads as `{}`. The body is read as JSON under each content type ' +
      "listed (text/plain and application/x-www-form-urlencoded are what curl's -d and simple " +
      'clients send) and without a Content-Type; other types are 415. UTF-8 only, no ' +
      `Content-Encoding (415), at most ${defaults.httpBodyMaxBytes} bytes (413). Numbers a ` +
      'double cannot keep exactly, duplicate keys and `__proto__` keys are 400.',
    content: Object.fromEntries(
      ACCEPTED_CONTENT_TYPES.map((type) => [type, { schema: componentRef(id) }]),
    ),
  };
}

/** The OpenAPI document of `routes` (the API's routing table by default). */
export function openApiDocument(
  version: string,
  routes: readonly ApiRoute[] = apiRoutes,
): JsonSchema {
  const all = z.toJSONSchema(registry(), {
    io: 'output',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
    override: override as never,
  }) as { schemas: Record<string, JsonSchema> };
  const described = Object.fromEntries(
    Object.entries(all.schemas).map(([id, schema]) => [id, clean(schema)]),
  );
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const item = paths[route.path] ?? {};
    item[route.method.toLowerCase()] = operationOf(route, described);
    paths[route.path] = item;
  }
  const errorReply = (description: string) => ({
    description,
    content: { 'application/json': { schema: componentRef('Error') } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'cloud-lro operations API',
      version,
      description:
        'google.longrunning operations over HTTP (the REST mapping, JSON per the proto3 JSON ' +
        'mapping) with batch wait, watch, traversal, parent and children. Errors carry ' +
        "Google's JSON error body. Generated from the service's routing table and zod schemas " +
        '(npm run openapi).',
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'npm start' }],
    security: [{}, { googleIdToken: [] }],
    paths,
    components: {
      schemas: described,
      responses: {
        BadRequest: errorReply('INVALID_ARGUMENT or FAILED_PRECONDITION: the request is invalid.'),
        NotFound: errorReply('NOT_FOUND: no such operation (or route).'),
        CrossSite: errorReply(
          'PERMISSION_DENIED: a browser marked the request as coming from another origin ' +
            '(Origin, Sec-Fetch-Site); the API takes state-changing requests from its own pages ' +
            'and from clients without a browser only.',
        ),
        TooLarge: errorReply('INVALID_ARGUMENT: the request body is larger than the limit.'),
        UnsupportedMediaType: errorReply(
          'INVALID_ARGUMENT: a Content-Type, charset or Content-Encoding the API does not read.',
        ),
        Error: errorReply("Any other error, in Google's JSON error shape."),
      },
      securitySchemes: {
        googleIdToken: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'A Google ID token for the API URL, when the function requires authentication.',
        },
      },
    },
  };
}

/** docs/openapi.yaml: the document as YAML, under a line saying where it comes from. */
export function openApiText(version: string, routes: readonly ApiRoute[] = apiRoutes): string {
  const header =
    '# Generated by `npm run openapi` from the routing table in shared/service/api/api.ts; do not edit.\n';
  return (
    header +
    stringify(openApiDocument(version, routes), { lineWidth: 0, aliasDuplicateObjects: false })
  );
}
