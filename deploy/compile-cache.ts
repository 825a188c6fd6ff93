/**
 * Node's compile cache for the deployed bundle (deploy/loader.ts): filled when the archive is
 * built, found by each instance.
 *
 * Node keeps the code V8 compiled for a file in a directory named after the Node.js version, the
 * architecture, V8's code version and flags, and the user ID of the process. The build writes it
 * under the archive's root; an instance running as the build's user reads it there, and one
 * running as another user reads a copy made for it under the temporary directory (the archive's
 * own may not be writable). Any failure leaves the process without a cache: slower, never
 * different.
 */
import { chmodSync, cpSync, readdirSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';

/** The compile-cache part of node:module (Node.js 22.1 and later; absent on Node.js 20). */
interface CompileCacheApi {
  enableCompileCache?(directory: string): { status: number; message?: string; directory?: string };
  flushCompileCache?(): void;
  constants?: { compileCacheStatus?: { ENABLED: number } };
}
const api = module as unknown as CompileCacheApi;

/** The cache directories written for this Node.js and architecture under `root`. */
function builtFor(root: string): string[] {
  try {
    const prefix = `v${process.versions.node}-${process.arch}-`;
    return readdirSync(root).filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
}

/**
 * The cache root for this process: `root` when its cache was written by this user, else a copy
 * for this user under `temporary`; undefined when there is no cache for this Node.js.
 */
export function cacheRoot(root: string, temporary: string): string | undefined {
  const uid = process.getuid?.();
  const built = builtFor(root);
  if (built.length === 0 || uid === undefined) return undefined;
  if (built.some((name) => name.endsWith(`-${uid}`))) return root;
  const own = join(temporary, 'lro-compile-cache');
  const source = built[0] as string;
  cpSync(join(root, source), join(own, source.replace(/-\d+$/, `-${uid}`)), { recursive: true });
  return own;
}

/** Turns the cache on for what this process loads next; whether it did. Never throws. */
export function useCompileCache(root: string, temporary: string): boolean {
  try {
    const found = cacheRoot(root, temporary);
    if (found === undefined || !api.enableCompileCache) return false;
    return api.enableCompileCache(found).status === api.constants?.compileCacheStatus?.ENABLED;
  } catch {
    return false;
  }
}

/**
 * Fills the cache under `root` with what `load` compiles, and lets every user read it. The
 * directory written, or why nothing was.
 */
export async function fillCompileCache(
  root: string,
  load: () => Promise<unknown>,
): Promise<{ directory: string } | { skipped: string }> {
  const enabled = api.enableCompileCache?.(root);
  if (!enabled || enabled.status !== api.constants?.compileCacheStatus?.ENABLED) {
    return { skipped: enabled?.message ?? `Node.js ${process.version} has no compile cache` };
  }
  await load();
  api.flushCompileCache?.();
  const readable = (dir: string) => {
    chmodSync(dir, 0o755);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) readable(path);
      else chmodSync(path, 0o644);
    }
  };
  readable(root);
  return { directory: enabled.directory ?? root };
}
