/**
 * The deployed archive's entry point (deploy/package.json's "main", built to
 * dist/functions/index.js by scripts/build-deploy.ts): loads the bundle of the functions,
 * ./bundle.js, with Node's compile cache filled when the archive was built.
 *
 * Compiling the bundle (3.3 MB) is a part of each cold start that the cache spares. Cloud Build
 * runs `npm run gcp-build` (deploy/package.json), which runs this file with `--prime`: it loads the
 * bundle once (no function is named, so nothing starts and nothing is called) and Node writes
 * what V8 compiled to .compile-cache/ at the archive's root. An instance then reads it instead of
 * compiling, when it runs the build's Node.js (the runtime layer is the one the build installed)
 * with the same V8 flags (deploy/compile-cache.ts).
 */
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fillCompileCache, useCompileCache } from './compile-cache.js';

const BUILD_CACHE = fileURLToPath(new URL('../../.compile-cache', import.meta.url));
// A variable, so that the bundler leaves the import to run time.
const BUNDLE = './bundle.js';

if (process.argv.includes('--prime')) {
  // Loading only: no function is served, so none starts, warms up or calls anything.
  delete process.env.FUNCTION_TARGET;
  process.env.LRO_WARM_UP_TIMEOUT = '0s';
  // Never fails the build: without a cache, instances compile the bundle as they would anyway.
  const filled = await fillCompileCache(BUILD_CACHE, () => import(BUNDLE)).catch(
    (err: unknown) => ({ skipped: err instanceof Error ? err.message : String(err) }),
  );
  process.stdout.write(
    'directory' in filled
      ? `compile cache written to ${filled.directory}\n`
      : `compile cache not written: ${filled.skipped}\n`,
  );
} else {
  useCompileCache(BUILD_CACHE, tmpdir());
  await import(BUNDLE);
}
