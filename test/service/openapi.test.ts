/**
 * docs/openapi.yaml: in sync with the generator, valid OpenAPI 3.1 for a real validator, and in
 * agreement with the API: every route of the routing table is described, and every described
 * path and method is answered by the running operations function (not "no route", not 405).
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openApiDocument, openApiText } from '../../scripts/openapi.js';
import { apiRoutes, resolve } from '../../shared/service/api/api.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

const root = resolvePath(import.meta.dirname, '../..');
const { version } = JSON.parse(readFileSync(resolvePath(root, 'package.json'), 'utf8')) as {
  version: string;
};
const file = readFileSync(resolvePath(root, 'docs/openapi.yaml'), 'utf8');
const described = parse(file) as { paths: Record<string, Record<string, unknown>> };
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** Every `METHOD path` the document describes. */
function describedRoutes(): string[] {
  return Object.entries(described.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((key) => METHODS.includes(key))
      .map((method) => `${method.toUpperCase()} ${path}`),
  );
}

describe('docs/openapi.yaml', () => {
  it('is what `npm run openapi` generates from the routing table', () => {
    expect(file, 'docs/openapi.yaml is stale: run `npm run openapi`').toBe(openApiText(version));
  });

  it('is valid OpenAPI 3.1 for @apidevtools/swagger-parser', async () => {
    const document = parse(file);
    expect(document.openapi).toMatch(/^3\.1\./);
    await expect(SwaggerParser.validate(document)).resolves.toBeTruthy();
  });

  it('is rejected by the validator when broken, so the check above can fail', async () => {
    const broken = structuredClone(openApiDocument(version)) as {
      paths: Record<string, Record<string, { responses?: unknown }>>;
    };
    const first = Object.values(broken.paths)[0] as Record<string, { responses?: unknown }>;
    for (const operation of Object.values(first)) delete operation.responses;
    (first as Record<string, unknown>).get = 'not an operation';
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
  });

  it('describes every route of the routing table, and nothing else', () => {
    const table = apiRoutes.map((r) => `${r.method} ${r.path}`);
    expect(new Set(table).size, 'a route is listed twice').toBe(table.length);
    expect(describedRoutes().sort()).toEqual([...table].sort());
  });

  it('names each route by a unique operationId and answers errors with the Google error body', () => {
    const ids = apiRoutes.map((r) => r.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const item of Object.values(described.paths)) {
      for (const operation of Object.values(item) as { responses: Record<string, unknown> }[]) {
        expect(operation.responses.default).toEqual({ $ref: '#/components/responses/Error' });
      }
    }
  });
});

describe('the API and its description agree', () => {
  let s: OperationsStack;

  beforeAll(async () => {
    s = await startOperationsStack();
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('routes every described path, with a concrete ID, to a route of the table', () => {
    for (const entry of describedRoutes()) {
      const [method, path] = entry.split(' ') as [string, string];
      const match = resolve(path.replaceAll(/\{[A-Za-z]+\}/g, 'x1'));
      expect(match, entry).toBeDefined();
      expect(
        match?.routes.map((r) => r.method),
        entry,
      ).toContain(method);
    }
    expect(resolve('/v1/operations/x1:bogus')).toBeUndefined();
  });

  it('answers every described path and method over HTTP', async () => {
    const { operation } = await s.store.create();
    await s.store.complete(operation.name, {
      response: { '@type': 'type.googleapis.com/test.Result' },
    });
    const id = operation.name.slice('operations/'.length);
    // Deletions last, so that the operation exists for the others.
    const entries = describedRoutes().sort(
      (a, b) => Number(a.startsWith('DELETE')) - Number(b.startsWith('DELETE')),
    );
    for (const entry of entries) {
      const [method, template] = entry.split(' ') as [string, string];
      const path = template.replaceAll(/\{[A-Za-z]+\}/g, id);
      const body =
        method !== 'POST'
          ? undefined
          : template.endsWith(':batchWait')
            ? { names: [operation.name], timeout: '1s' }
            : template.endsWith(':wait')
              ? { timeout: '1s' }
              : {};
      const reply = await call<{ error?: { message?: string } }>(s.url, method, path, body);
      expect(reply.status, `${entry}: ${JSON.stringify(reply.body)}`).not.toBe(405);
      expect(String(reply.body?.error?.message ?? ''), entry).not.toMatch(/^no route for/);
      expect(reply.status, `${entry}: ${JSON.stringify(reply.body)}`).toBeLessThan(500);
    }
    // The check above can fail: a path outside the description is not answered.
    const stray = await call<{ error?: { message?: string } }>(
      s.url,
      'GET',
      `/v1/operations/${id}:bogus`,
    );
    expect(stray.body.error?.message).toMatch(/^no route for/);
  });
});
