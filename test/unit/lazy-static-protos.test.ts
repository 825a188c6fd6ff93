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

/** Bundles `source` (CommonJS) as `name` with `plugins`; the module it exports. */
async function bundled(
  name: string,
  source: string,
  plugins: (typeof lazyStaticProtos)[],
): Promise<Record<string, unknown> & { before: string[]; required: string[]; read: string[] }> {
  const entry = join(dir, `${name}-entry.cjs`);
  writeFileSync(entry, source);
  const out = join(dir, `${name}-out.cjs`);
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
  return (await import(pathToFileURL(out).href)).default;
}

/** Requires Pub/Sub's static protos and reports what happened when. */
const PUBSUB_ENTRY = `const roots = () => Object.keys(require('protobufjs/minimal').roots);
const before = roots();
const protos = require('@google-cloud/pubsub/build/protos/protos.js');
const required = roots();
const message = protos.google.pubsub.v1.PubsubMessage;
const bytes = message.encode({ data: Buffer.from('hi'), attributes: { a: 'b' } }).finish();
const decoded = message.decode(bytes);
module.exports = { before, required, read: roots(), data: Buffer.from(decoded.data).toString(), attributes: decoded.attributes, same: protos.google === protos.google };
`;

describe('lazy static protobuf modules in the deploy bundle', () => {
  it('evaluates the module on first read, not when required, and it works', async () => {
    const lazy = await bundled('lazy', PUBSUB_ENTRY, [lazyStaticProtos]);
    expect(lazy.required).toEqual(lazy.before);
    expect(lazy.read.length).toBeGreaterThan(lazy.before.length);
    expect(lazy.data).toBe('hi');
    expect(lazy.attributes).toEqual({ a: 'b' });
    expect(lazy.same).toBe(true);
  });

  it("keeps google-gax's modules lazy through TypeScript's __importStar", async () => {
    // What tsc emits for `import * as operationsProtos from '../protos/operations'` (google-gax).
    const gax = await bundled(
      'gax',
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
      [lazyStaticProtos],
    );
    expect(gax.required).toEqual(gax.before);
    expect(gax.read.length).toBeGreaterThan(gax.before.length);
    expect({ name: gax.name, done: gax.done }).toEqual({ name: 'operations/x', done: true });
  });

  it('without the plugin, requiring it evaluates it (the difference is observable)', async () => {
    const eager = await bundled('eager', PUBSUB_ENTRY, []);
    expect(eager.required.length).toBeGreaterThan(eager.before.length);
    expect(eager.data).toBe('hi');
  });
});
