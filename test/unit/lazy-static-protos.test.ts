/**
 * The deploy bundle's lazy static protobuf modules (scripts/build-deploy.ts): a bundle built with
 * the plugin leaves Pub/Sub's `build/protos/protos.js` out (it is built on its own beside the
 * bundle), does not load it when a module requires it, and loads it, once, when something reads
 * from it; what is read works as the real module does.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildStaticProtos,
  lazyStaticProtos,
  STATIC_PROTOS_DIR,
} from '../../scripts/build-deploy.js';
import { ROOT } from '../../scripts/run-function.js';

const dir = mkdtempSync(join(tmpdir(), 'lro-lazy-protos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Loaded = Record<string, unknown> & { before: string[]; required: string[]; read: string[] };

/**
 * Bundles `source` (CommonJS) as `name`, in a directory of its own, with the plugin (and the
 * static protobuf modules it left out built beside it) or without; the module it exports, and
 * the bundle's text.
 */
async function bundled(
  name: string,
  source: string,
  lazy: boolean,
): Promise<{ exports: Loaded; text: string }> {
  const out = join(dir, name);
  const entry = join(dir, `${name}-entry.cjs`);
  writeFileSync(entry, source);
  const { plugin, modules } = lazyStaticProtos();
  await build({
    entryPoints: [entry],
    outfile: join(out, 'bundle.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    nodePaths: [join(ROOT, 'node_modules')],
    logLevel: 'error',
    plugins: lazy ? [plugin] : [],
  });
  if (lazy) await buildStaticProtos(modules, out);
  const file = join(out, 'bundle.cjs');
  return {
    exports: (await import(pathToFileURL(file).href)).default,
    text: readFileSync(file, 'utf8'),
  };
}

/**
 * Requires Pub/Sub's static protos and reports what happened when: the static protobuf modules
 * loaded from files of their own (by the paths Node.js has loaded, `require.cache`), or, in one
 * bundle, the roots registered with the bundle's protobufjs.
 */
const LOADED = `const loaded = () => [...Object.keys(require('protobufjs/minimal').roots), ...Object.keys(require.cache).filter((p) => p.includes(${JSON.stringify(STATIC_PROTOS_DIR)}))];`;
const PUBSUB_ENTRY = `${LOADED}
const roots = loaded;
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
    const { exports: lazy, text } = await bundled('lazy', PUBSUB_ENTRY, true);
    // Not in the bundle: a file of its own beside it.
    expect(text).not.toContain('PubsubMessage.decodeDelimited = function');
    expect(
      readdirSync(join(dir, 'lazy', STATIC_PROTOS_DIR)).filter((f) => f.endsWith('.cjs')),
    ).toEqual(['node_modules-google-cloud-pubsub-build-protos-protos.js.cjs']);
    expect(lazy.required).toEqual(lazy.before);
    expect(lazy.read.length).toBeGreaterThan(lazy.before.length);
    expect(lazy.data).toBe('hi');
    expect(lazy.attributes).toEqual({ a: 'b' });
    expect(lazy.same).toBe(true);
  });

  it("keeps google-gax's modules lazy through TypeScript's __importStar", async () => {
    // What tsc emits for `import * as operationsProtos from '../protos/operations'` (google-gax).
    const { exports: gax } = await bundled(
      'gax',
      `var __importStar = (mod) => {
  if (mod && mod.__esModule) return mod;
  var result = {};
  if (mod != null) for (var k of Object.getOwnPropertyNames(mod)) if (k !== 'default') result[k] = mod[k];
  result.default = mod;
  return result;
};
${LOADED}
const roots = loaded;
const before = roots();
const operationsProtos = __importStar(require(${JSON.stringify(join(ROOT, 'node_modules/google-gax/build/protos/operations'))}));
const required = roots();
const Operation = operationsProtos.google.longrunning.Operation;
const decoded = Operation.decode(Operation.encode({ name: 'operations/x', done: true }).finish());
module.exports = { before, required, read: roots(), name: decoded.name, done: decoded.done };
`,
      true,
    );
    expect(gax.required).toEqual(gax.before);
    expect(gax.read.length).toBeGreaterThan(gax.before.length);
    expect({ name: gax.name, done: gax.done }).toEqual({ name: 'operations/x', done: true });
  });

  it('without the plugin, requiring it evaluates it (the difference is observable)', async () => {
    const { exports: eager, text } = await bundled('eager', PUBSUB_ENTRY, false);
    expect(text).toContain('PubsubMessage.decodeDelimited = function');
    expect(eager.required.length).toBeGreaterThan(eager.before.length);
    expect(eager.data).toBe('hi');
  });
});
