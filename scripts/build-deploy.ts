/**
 * Builds the deployed functions archive's content into dist/deploy/ (`npm run build:deploy`):
 *
 *   package.json, package-lock.json   from deploy/: the functions framework is the only dependency
 *                                     Cloud Build installs (`npm ci --omit=dev`)
 *   dist/functions/bundle.js (+ .map) one ES module bundle of functions/index.ts: the project's code,
 *                                     Bigtable, Pub/Sub, auth and zod, without the functions
 *                                     framework (the platform starts it from node_modules)
 *   dist/functions/static-protos/     the client libraries' static protobuf modules, one CommonJS
 *                                     file each, which the bundle requires on first use only
 *   dist/functions/index.js (+ .map)  the entry point (deploy/loader.ts): loads the bundle with
 *                                     Node's compile cache, which Cloud Build fills by running it
 *                                     with --prime (`npm run gcp-build`)
 *   build/protos/, protos/            the proto files the bundled client libraries read by path
 *                                     relative to their own file, at the same relative place from
 *                                     dist/functions/ (google-gax: ../../build/protos; Bigtable:
 *                                     ../../protos/google/bigtable/v2/response_params.proto)
 *   console-app/                      the web console's page, style sheet, icon and scripts
 *                                     (shared/service/api/console.ts: ../../console-app)
 *
 * A cold start then loads one file instead of about a thousand modules, and installs 129 packages
 * instead of about 400. Bigtable's client-side metrics export (OpenTelemetry, Cloud Monitoring,
 * googleapis) is left out: the store constructs Bigtable with `metricsEnabled: false`, and the
 * module that would construct the exporter is replaced by one that throws if it ever were. And
 * @grpc/proto-loader's descriptor objects, which only gRPC reflection reads, are computed when
 * first read rather than at each gapic client's first call (LAZY_DESCRIPTOR_REWRITES). Built-in
 * modules are taken through require, which spares Node building their ES facades, and the
 * libraries' static protobuf modules, which they only re-export, are files of their own, loaded on
 * first use.
 *
 * Run after `npm run build` (the console's files come from dist/console-app).
 */
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { log } from '../shared/sdk/log.js';
import { ROOT as root } from './run-function.js';
import { answerHelp } from './usage.js';
export const DEPLOY_DIR = resolve(root, 'dist/deploy');

/** The directory of package `name` as resolved from directory `from`. */
function packageDir(name: string, from = root): string {
  let dir = dirname(createRequire(join(from, 'package.json')).resolve(name));
  while (!dir.endsWith(join('node_modules', name))) dir = dirname(dir);
  return dir;
}

/**
 * Bigtable's index loads its Cloud Monitoring metrics handler unconditionally; with
 * `metricsEnabled: false` it is never constructed. The bundle gets a stand-in that throws.
 */
const withoutClientSideMetrics: Plugin = {
  name: 'without-bigtable-client-side-metrics',
  setup(b) {
    b.onResolve({ filter: /client-side-metrics\/gcp-metrics-handler$/ }, (args) =>
      args.importer.includes('@google-cloud/bigtable')
        ? { path: 'gcp-metrics-handler', namespace: 'lro-stub' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lro-stub' }, () => ({
      loader: 'js',
      contents: `export class GCPMetricsHandler {
  constructor() {
    throw new Error('Bigtable client-side metrics are not part of this build: construct Bigtable with metricsEnabled: false');
  }
}`,
    }));
  },
};

/**
 * Each gapic client (Bigtable's, Pub/Sub's publisher and subscriber) turns its protos into a gRPC
 * package definition at its first call, and @grpc/proto-loader builds, for every message and enum,
 * a descriptor object and the encoded file descriptors: the largest part of an instance's first
 * calls (about 200 ms of CPU for the operations function's two clients), for fields only gRPC
 * reflection reads (`type`, `fileDescriptorProtos`). In the bundle both become getters computed on
 * first read, with the same values. The build fails if the module no longer has the expected shape.
 */
export const LAZY_DESCRIPTOR_REWRITES: readonly (readonly [string, string])[] = [
  [
    `    const descriptorList = root.toDescriptor('proto3').file;
    const bufferList = descriptorList.map(value => Buffer.from(descriptor.FileDescriptorProto.encode(value).finish()));
`,
    `    let files;
    const bufferList = { get value() {
        return (files ??= root.toDescriptor('proto3').file.map(value => Buffer.from(descriptor.FileDescriptorProto.encode(value).finish())));
    } };
`,
  ],
  [
    `    const messageDescriptor = message.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 DescriptorProto',
        type: messageDescriptor.$type.toObject(messageDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
`,
    `    let type;
    return {
        format: 'Protocol Buffer 3 DescriptorProto',
        get type() {
            if (type === undefined) {
                const messageDescriptor = message.toDescriptor('proto3');
                type = messageDescriptor.$type.toObject(messageDescriptor, descriptorOptions);
            }
            return type;
        },
        get fileDescriptorProtos() { return fileDescriptors.value; },
`,
  ],
  [
    `    const enumDescriptor = enumType.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 EnumDescriptorProto',
        type: enumDescriptor.$type.toObject(enumDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
`,
    `    let type;
    return {
        format: 'Protocol Buffer 3 EnumDescriptorProto',
        get type() {
            if (type === undefined) {
                const enumDescriptor = enumType.toDescriptor('proto3');
                type = enumDescriptor.$type.toObject(enumDescriptor, descriptorOptions);
            }
            return type;
        },
        get fileDescriptorProtos() { return fileDescriptors.value; },
`,
  ],
];

/** Applies `rewrites` to `source`, each exactly once; throws naming the first that does not fit. */
export function rewriteOnce(
  source: string,
  rewrites: readonly (readonly [string, string])[],
  file: string,
): string {
  let out = source;
  for (const [from, to] of rewrites) {
    const at = out.indexOf(from);
    if (at < 0 || out.indexOf(from, at + 1) >= 0) {
      throw new Error(`${file} does not contain exactly one ${JSON.stringify(from.slice(0, 60))}`);
    }
    out = out.slice(0, at) + to + out.slice(at + from.length);
  }
  return out;
}

const lazyDescriptors: Plugin = {
  name: 'lazy-proto-loader-descriptors',
  setup(b) {
    b.onLoad(
      { filter: /[\\/]@grpc[\\/]proto-loader[\\/]build[\\/]src[\\/]index\.js$/ },
      (args) => ({
        loader: 'js',
        contents: rewriteOnce(readFileSync(args.path, 'utf8'), LAZY_DESCRIPTOR_REWRITES, args.path),
      }),
    );
  },
};

/**
 * An ES module's `import … from 'node:crypto'` (or any built-in module) makes Node build that
 * module's ES facade, reading every export, lazy getters included (node:http's loads undici,
 * node:crypto's web crypto): about 60 ms of each cold start for modules the code uses through a
 * few functions. The bundle takes every built-in module through require instead.
 */
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const builtinsThroughRequire: Plugin = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) =>
      args.kind === 'import-statement' && BUILTINS.has(args.path)
        ? { path: args.path.replace(/^node:/, ''), namespace: 'lro-builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lro-builtin' }, (args) => ({
      loader: 'js',
      contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`,
    }));
  },
};

/**
 * How the deployed code is minified: whitespace and syntax only, names kept (a quarter less to
 * parse at each cold start, and stack traces still name the functions; the source map gives files
 * and lines), license notices in a file beside each output.
 */
const MINIFIED = {
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'linked',
} as const;

/**
 * The static protobuf modules of Bigtable and Pub/Sub (`build/protos/protos.js`, 2.0 MB and 1.0 MB
 * of generated classes) are loaded by the libraries' index modules only to re-export them as
 * `protos` (and by Bigtable's SQL query reader, which this service never calls); evaluating them
 * was about 150 ms of each cold start; google-gax's index does the same with its IAM, locations
 * and long-running operations modules (35 ms more, 0.5 MB). In the bundle each becomes an object
 * that loads the real module the first time anything reads from it. It says it is an ES module's
 * namespace (`__esModule`), so that TypeScript's `__importStar` (gax) keeps it as it is rather than
 * copying every property, which would load it at once.
 *
 * The real modules are not in the bundle either: half its bytes, which an instance would read,
 * decode and take from the compile cache at each start for nothing. Each is built on its own
 * (`buildStaticProtos`, with its own copy of protobufjs/minimal) into `static-protos/` beside the
 * bundle, and required from there, by path, on first read.
 */
const LAZY_MODULE =
  /[\\/](@google-cloud[\\/](bigtable|pubsub)[\\/]build[\\/]protos[\\/]protos|google-gax[\\/]build[\\/]protos[\\/](iam_service|locations|operations))\.js$/;

/** The directory, beside the bundle, of the static protobuf modules. */
export const STATIC_PROTOS_DIR = 'static-protos';

/** The file name of a static protobuf module built on its own: its path, flattened. */
function staticProtosFile(path: string): string {
  return `${relative(root, path).replace(/[^A-Za-z0-9_.]+/g, '-')}.cjs`;
}

/**
 * The plugin, and the modules it left out of the bundle (their paths, by file name), which
 * `buildStaticProtos` builds.
 */
export function lazyStaticProtos(): { plugin: Plugin; modules: Map<string, string> } {
  const modules = new Map<string, string>();
  const plugin: Plugin = {
    name: 'lazy-static-protos',
    setup(b) {
      b.onResolve(
        { filter: /protos[\\/](protos|iam_service|locations|operations)(\.js)?$/ },
        async (args) => {
          if (args.pluginData === 'real') return undefined;
          const resolved = await b.resolve(args.path, {
            kind: args.kind,
            resolveDir: args.resolveDir,
            pluginData: 'real',
          });
          if (!LAZY_MODULE.test(resolved.path)) return undefined;
          modules.set(staticProtosFile(resolved.path), resolved.path);
          return { path: relative(root, resolved.path), namespace: 'lro-lazy' };
        },
      );
      b.onLoad({ filter: /.*/, namespace: 'lro-lazy' }, (args) => ({
        loader: 'js',
        // By path, at run time: __dirname is the bundle's directory (the banner's, or CommonJS's).
        contents: `let real;
const load = () => (real ??= require(__dirname + ${JSON.stringify(`/${STATIC_PROTOS_DIR}/${staticProtosFile(resolve(root, args.path))}`)}));
module.exports = new Proxy({}, {
  get: (_, key) => (key === '__esModule' ? true : load()[key]),
  has: (_, key) => key === '__esModule' || key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const descriptor = Object.getOwnPropertyDescriptor(load(), key);
    return descriptor && { ...descriptor, configurable: true };
  },
});`,
      }));
    },
  };
  return { plugin, modules };
}

/**
 * Builds each static protobuf module `lazyStaticProtos` left out into `dir`/static-protos/, as one
 * CommonJS file with what it requires; resolves the files written, with their sizes.
 */
export async function buildStaticProtos(
  modules: Map<string, string>,
  dir: string,
): Promise<Record<string, { bytes: number }>> {
  if (modules.size === 0) return {};
  const result = await build({
    entryPoints: Object.fromEntries(
      [...modules].map(([file, path]) => [file.replace(/\.cjs$/, ''), path]),
    ),
    outdir: join(dir, STATIC_PROTOS_DIR),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    ...MINIFIED,
    logLevel: 'warning',
    metafile: true,
  });
  return result.metafile.outputs;
}

/** Copies the files under `from` whose names end with one of `endings` to `to`. */
function copyFiles(from: string, to: string, endings: string[]): number {
  let n = 0;
  for (const entry of readdirSync(from)) {
    const source = join(from, entry);
    if (statSync(source).isDirectory()) {
      n += copyFiles(source, join(to, entry), endings);
    } else if (endings.some((e) => entry.endsWith(e))) {
      mkdirSync(to, { recursive: true });
      cpSync(source, join(to, entry));
      n++;
    }
  }
  return n;
}

export async function buildDeploy(): Promise<void> {
  const consoleApp = resolve(root, 'dist/console-app');
  if (!existsSync(join(consoleApp, 'index.html')))
    throw new Error(`${consoleApp} is missing: run "npm run build" first`);
  rmSync(DEPLOY_DIR, { recursive: true, force: true });
  mkdirSync(DEPLOY_DIR, { recursive: true });

  const staticProtos = lazyStaticProtos();
  const result = await build({
    entryPoints: { bundle: resolve(root, 'functions/index.ts') },
    outdir: join(DEPLOY_DIR, 'dist/functions'),
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The platform starts the framework from node_modules and it loads this bundle: one copy.
    external: ['@google-cloud/functions-framework'],
    // Bundled CommonJS libraries call require and read files next to __dirname.
    banner: {
      js: [
        "import { createRequire as __lroCreateRequire } from 'node:module';",
        "import { dirname as __lroDirname } from 'node:path';",
        "import { fileURLToPath as __lroFileURLToPath } from 'node:url';",
        'const require = __lroCreateRequire(import.meta.url);',
        'const __filename = __lroFileURLToPath(import.meta.url);',
        'const __dirname = __lroDirname(__filename);',
      ].join('\n'),
    },
    sourcemap: 'linked',
    sourcesContent: false,
    ...MINIFIED,
    logLevel: 'warning',
    metafile: true,
    plugins: [
      withoutClientSideMetrics,
      lazyDescriptors,
      builtinsThroughRequire,
      staticProtos.plugin,
    ],
  });
  const staticOutputs = await buildStaticProtos(
    staticProtos.modules,
    join(DEPLOY_DIR, 'dist/functions'),
  );

  // The entry point: loads the bundle with the compile cache the build fills (deploy/loader.ts).
  const loader = await build({
    entryPoints: { index: resolve(root, 'deploy/loader.ts') },
    outdir: join(DEPLOY_DIR, 'dist/functions'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['./bundle.js'],
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
    metafile: true,
  });

  const gax = packageDir('google-gax', packageDir('@google-cloud/bigtable'));
  const bigtable = packageDir('@google-cloud/bigtable');
  const protos =
    copyFiles(join(gax, 'build/protos'), join(DEPLOY_DIR, 'build/protos'), ['.proto', '.json']) +
    copyFiles(join(bigtable, 'build/protos'), join(DEPLOY_DIR, 'protos'), ['.proto']);
  copyFiles(consoleApp, join(DEPLOY_DIR, 'console-app'), ['.js', '.html', '.css', '.svg']);
  for (const file of ['package.json', 'package-lock.json']) {
    cpSync(resolve(root, 'deploy', file), join(DEPLOY_DIR, file));
  }
  const outputs = Object.entries({
    ...loader.metafile.outputs,
    ...result.metafile.outputs,
    ...staticOutputs,
  }).map(([path, o]) => ({
    path: relative(DEPLOY_DIR, resolve(root, path)),
    bytes: o.bytes,
  }));
  log.info('deploy artifact built', {
    dir: relative(root, DEPLOY_DIR),
    outputs,
    protos,
    modules: Object.keys(result.metafile.inputs).length,
  });
}

/**
 * Copies the built artifact (dist/deploy) to `dir` and installs it as Cloud Build does
 * (`npm ci --omit=dev`; from the npm cache where it can): the deployed function's files.
 */
export async function installArtifact(dir: string): Promise<void> {
  if (!existsSync(join(DEPLOY_DIR, 'package.json'))) {
    throw new Error(`${DEPLOY_DIR} is missing: run "npm run build" first`);
  }
  rmSync(dir, { recursive: true, force: true });
  cpSync(DEPLOY_DIR, dir, { recursive: true });
  await promisify(execFile)(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: dir, env: { ...process.env, NODE_ENV: 'production' } },
  );
  // Then the archive's own build step, as the Node.js buildpack runs it: the compile cache.
  await promisify(execFile)('npm', ['run', 'gcp-build'], {
    cwd: dir,
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

/** Bytes and files under `dir`, as `du --apparent-size` counts them. */
export function treeSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = treeSize(path);
      bytes += sub.bytes;
      files += sub.files;
    } else if (entry.isFile()) {
      bytes += statSync(path).size;
      files++;
    }
  }
  return { bytes, files };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  answerHelp(`Usage: npm run build:deploy
  Builds the deployed functions archive's content into dist/deploy/ (one bundle of the functions,
  the protos it reads, the console app, deploy/package.json and its lock). Run after npm run build
  (which runs it too).`);
  await buildDeploy();
}
