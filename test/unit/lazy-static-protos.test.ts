/**
 * The deploy bundle's lazy static protobuf modules (scripts/build-deploy.ts): a bundle built with
 * the plugin does not evaluate Pub/Sub's `build/protos/protos.js` when a module requires it, and
 * evaluates it, once, when something reads from it; what is read works as the real module does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { lazyStaticProtos } from '../../scripts/build-deploy.js';
import { ROOT } from '../../scripts/run-function.js';

const dir = mkdtempSync(join(tmpdir(), 'lro-lazy-protos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bundles an entry that requires Pub/Sub's static protos and reports what happened when. */
async function bundle(plugins: (typeof lazyStaticProtos)[]): Promise<string> {
  const entry = join(dir, `entry-${plugins.length}.cjs`);
  writeFileSync(
    entry,
    `const roots = () => Object.keys(require('protobufjs/minimal').roots);
const before = roots();
const protos = require('@google-cloud/pubsub/build/protos/protos.js');
const required = roots();
const message = protos.google.pubsub.v1.PubsubMessage;
const bytes = message.encode({ data: Buffer.from('hi'), attributes: { a: 'b' } }).finish();
const decoded = message.decode(bytes);
module.exports = { before, required, read: roots(), data: Buffer.from(decoded.data).toString(), attributes: decoded.attributes, same: protos.google === protos.google };
`,
  );
  const out = join(dir, `out-${plugins.length}.cjs`);
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    nodePaths: [join(ROOT, 'node_modules')],
    logLevel: 'error',
    plugins,
  });
  return out;
}

describe('lazy static protobuf modules in the deploy bundle', () => {
  it('evaluates the module on first read, not when required, and it works', async () => {
    const lazy = (await import(pathToFileURL(await bundle([lazyStaticProtos])).href)).default;
    expect(lazy.required).toEqual(lazy.before);
    expect(lazy.read.length).toBeGreaterThan(lazy.before.length);
    expect(lazy.data).toBe('hi');
    expect(lazy.attributes).toEqual({ a: 'b' });
    expect(lazy.same).toBe(true);
  });

  it("keeps google-gax's modules lazy through TypeScript's __importStar", async () => {
    const entry = join(dir, 'gax-entry.cjs');
    // What tsc emits for `import * as operationsProtos from '../protos/operations'` (google-gax).
    writeFileSync(
      entry,
      `var __importStar = (mod) => {
  if (mod && mod.__esModule) return mod;
  var result = {};
  if (mod != null) for (var k of Object.getOwnPropertyNames(mod)) if (k !== 'default') result[k] = mod[k];
  result.default = mod;
  return result;
};
const roots = () => Object.keys(require('protobufjs/minimal').roots);
const before = roots();
const operationsProtos = __importStar(require(${JSON.stringify(join(ROOT, 'node_modules/google-gax/build/protos/operations'))}));
const required = roots();
const Operation = operationsProtos.google.longrunning.Operation;
const decoded = Operation.decode(Operation.encode({ name: 'operations/x', done: true }).finish());
module.exports = { before, required, read: roots(), name: decoded.name, done: decoded.done };
`,
    );
    const out = join(dir, 'gax-out.cjs');
    await build({
      entryPoints: [entry],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      nodePaths: [join(ROOT, 'node_modules')],
      logLevel: 'error',
      plugins: [lazyStaticProtos],
    });
    const gax = (await import(pathToFileURL(out).href)).default;
    expect(gax.required).toEqual(gax.before);
    expect(gax.read.length).toBeGreaterThan(gax.before.length);
    expect({ name: gax.name, done: gax.done }).toEqual({ name: 'operations/x', done: true });
  });

  it('without the plugin, requiring it evaluates it (the difference is observable)', async () => {
    const eager = (await import(pathToFileURL(await bundle([])).href)).default;
    expect(eager.required.length).toBeGreaterThan(eager.before.length);
    expect(eager.data).toBe('hi');
  });
});
