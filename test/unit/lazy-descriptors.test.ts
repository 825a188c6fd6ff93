/**
 * The deploy bundle's rewrite of @grpc/proto-loader (scripts/build-deploy.ts): descriptor objects
 * computed on first read instead of at each client's first call. The rewritten module, loaded from
 * the installed proto-loader, must give package definitions equal to the original's, field by
 * field, for the protos of both client libraries, and must not compute any descriptor until one is
 * read.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAZY_DESCRIPTOR_REWRITES, rewriteOnce } from '../../scripts/build-deploy.js';

const require = createRequire(import.meta.url);
const loaderPath = require.resolve('@grpc/proto-loader');
type Loader = {
  fromJSON(json: object, options?: object): Record<string, Record<string, unknown>>;
};
const original = require('@grpc/proto-loader') as Loader;

/** The rewritten module, compiled as the bundle would see it (its own require and paths). */
function rewritten(): Loader {
  const source = rewriteOnce(
    readFileSync(loaderPath, 'utf8'),
    LAZY_DESCRIPTOR_REWRITES,
    loaderPath,
  );
  const module = { exports: {} as Loader };
  const localRequire = createRequire(loaderPath);
  new Function('exports', 'require', 'module', '__filename', '__dirname', source)(
    module.exports,
    localRequire,
    module,
    loaderPath,
    dirname(loaderPath),
  );
  return module.exports;
}

const protoSets = {
  pubsub: join(dirname(require.resolve('@google-cloud/pubsub')), '../protos/protos.json'),
  bigtable: join(dirname(require.resolve('@google-cloud/bigtable')), '../protos/protos.json'),
};

describe('lazy proto-loader descriptors in the deploy bundle', () => {
  it('applies to the installed proto-loader, each rewrite exactly once', () => {
    expect(() =>
      rewriteOnce(readFileSync(loaderPath, 'utf8'), LAZY_DESCRIPTOR_REWRITES, loaderPath),
    ).not.toThrow();
    expect(() => rewriteOnce('nothing here', LAZY_DESCRIPTOR_REWRITES, 'x.js')).toThrow(
      /does not contain exactly one/,
    );
  });

  for (const [library, path] of Object.entries(protoSets)) {
    it(`gives the same package definition for ${library}'s protos`, () => {
      const json = JSON.parse(readFileSync(path, 'utf8')) as object;
      const options = { keepCase: false, longs: String, enums: String, defaults: true };
      const before = original.fromJSON(json, options);
      const after = rewritten().fromJSON(json, options);
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
      // One list of encoded files for the whole set, on both sides.
      const files = Object.values(after).find((d) => 'format' in d)?.fileDescriptorProtos;
      let compared = 0;
      for (const [name, definition] of Object.entries(before)) {
        const lazy = after[name] as Record<string, unknown>;
        if ('format' in definition) {
          expect(lazy.format, name).toBe(definition.format);
          expect(lazy.type, name).toEqual(definition.type);
          if (compared === 0) {
            expect(lazy.fileDescriptorProtos, name).toEqual(definition.fileDescriptorProtos);
          }
          expect(lazy.fileDescriptorProtos, name).toBe(files);
          compared++;
        } else {
          // A service: its methods' request and response types.
          for (const [method, m] of Object.entries(definition)) {
            const ours = lazy[method] as Record<string, { type: unknown }>;
            const theirs = m as Record<string, { type: unknown }>;
            expect(ours.requestType?.type, `${name}.${method}`).toEqual(theirs.requestType?.type);
            expect(ours.responseType?.type, `${name}.${method}`).toEqual(theirs.responseType?.type);
          }
        }
      }
      expect(compared).toBeGreaterThan(50);
    });
  }

  it('computes no descriptor until one is read', () => {
    const json = JSON.parse(readFileSync(protoSets.pubsub, 'utf8')) as object;
    const definition = rewritten().fromJSON(json);
    const message = definition['google.pubsub.v1.PubsubMessage'] as object;
    const type = Object.getOwnPropertyDescriptor(message, 'type');
    expect(type?.get).toBeTypeOf('function');
    expect(Object.getOwnPropertyDescriptor(message, 'fileDescriptorProtos')?.get).toBeTypeOf(
      'function',
    );
    // Read twice: computed once, the same object after.
    const first = (message as { type: unknown }).type;
    expect((message as { type: unknown }).type).toBe(first);
  });
});
