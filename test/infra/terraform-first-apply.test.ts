/**
 * Offline checks that a first `terraform plan` and `apply` go through on an empty project, and
 * that a second plan of the same configuration changes nothing it should not (nothing here reaches
 * Google Cloud or downloads a provider):
 *
 * - the root variables' own validations accept every default and terraform.tfvars.example, run by
 *   the real terraform on a copy of the variable blocks (validations need no provider);
 * - alert policies on log-based metrics wait for the metrics to become usable, and the metrics'
 *   filters name only values known at plan time, so they are created early;
 * - the Pub/Sub service agent is created (google_project_service_identity) before it is granted
 *   anything, and IAM waits last at least the two minutes Google documents;
 * - the build account holds only what a function build needs, on the resources it needs them on;
 * - no module-level depends_on (it defers data sources and makes later plans replace grants and
 *   rebuild the functions);
 * - the smaller points: a pinned page-token secret version, no lifecycle rule deleting the live
 *   source archive, gc_rules, an acknowledgement deadline above the subscriber's timeout.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@cdktf/hcl2json';
import { beforeAll, describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

type Body = Record<string, unknown>;

function asBody(value: unknown): Body {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Body) : {};
}

function first(value: unknown): Body {
  return Array.isArray(value) ? asBody(value[0]) : asBody(value);
}

/** How hcl2json renders an expression: `${...}`. */
function expr(text: string): string {
  return `\${${text}}`;
}

interface Module {
  dir: string;
  text: string;
  resources: Map<string, Body>;
  data: Map<string, Body>;
  variables: Map<string, Body>;
  outputs: Map<string, Body>;
  calls: Map<string, Body>;
  locals: Body;
  terraform: Body[];
}

const modules = new Map<string, Module>();

async function load(dir: string): Promise<Module> {
  const abs = path.join(repoRoot, dir);
  const module: Module = {
    dir,
    text: '',
    resources: new Map(),
    data: new Map(),
    variables: new Map(),
    outputs: new Map(),
    calls: new Map(),
    locals: {},
    terraform: [],
  };
  for (const file of readdirSync(abs).filter((f) => f.endsWith('.tf'))) {
    const text = readFileSync(path.join(abs, file), 'utf8');
    module.text += text;
    const parsed = await parse(file, text);
    for (const [kind, target] of [
      ['resource', module.resources],
      ['data', module.data],
    ] as const) {
      for (const [type, byName] of Object.entries(asBody(parsed[kind]))) {
        for (const [name, bodies] of Object.entries(asBody(byName))) {
          target.set(`${type}.${name}`, first(bodies));
        }
      }
    }
    for (const [kind, target] of [
      ['variable', module.variables],
      ['output', module.outputs],
      ['module', module.calls],
    ] as const) {
      for (const [name, bodies] of Object.entries(asBody(parsed[kind]))) {
        target.set(name, first(bodies));
      }
    }
    for (const locals of (parsed.locals as Body[] | undefined) ?? []) {
      Object.assign(module.locals, locals);
    }
    module.terraform.push(...((parsed.terraform as Body[] | undefined) ?? []));
  }
  return module;
}

function mod(dir: string): Module {
  const module = modules.get(dir);
  if (!module) throw new Error(`no module ${dir}`);
  return module;
}

function resource(dir: string, address: string): Body {
  const body = mod(dir).resources.get(address);
  if (!body) throw new Error(`${dir || 'root'}: no resource ${address}`);
  return body;
}

/** Directory of a module call of the root module. */
function callDir(name: string): string {
  const source = String(mod('').calls.get(name)?.source ?? '');
  return path.posix.normalize(source.replace(/^\.\//, ''));
}

/** The root module call whose source is `dir`. */
function callOf(dir: string): Body {
  for (const [name] of mod('').calls)
    if (callDir(name) === dir) return mod('').calls.get(name) ?? {};
  throw new Error(`no module call of ${dir}`);
}

/** `"${var.x}s"` of a module, resolved through its call or its default, in seconds. */
function seconds(dir: string, value: unknown): number {
  const literal = /^(\d+)s$/.exec(String(value));
  if (literal) return Number(literal[1]);
  const name = /^\$\{var\.(\w+)\}s$/.exec(String(value))?.[1];
  if (!name) throw new Error(`${String(value)} is not a duration in seconds`);
  const set = dir === '' ? undefined : callOf(dir)[name];
  if (typeof set === 'number') return set;
  if (set !== undefined) throw new Error(`${dir}: var.${name} is set to ${String(set)}`);
  const fallback = mod(dir).variables.get(name)?.default;
  if (typeof fallback !== 'number') throw new Error(`${dir}: var.${name} has no number default`);
  return fallback;
}

const tfEnv = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };

function terraform(dir: string, ...args: string[]): { ok: boolean; output: string } {
  try {
    const output = execFileSync('terraform', args, {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
      env: tfEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, output };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Top-level blocks of a kind (`variable`, `locals`) as written in a .tf file. */
function blocksOf(file: string, kind: string): string[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  return [...text.matchAll(new RegExp(`^${kind}\\b[^\\n]*\\{\\n[\\s\\S]*?^\\}\\n`, 'gm'))].map(
    (m) => m[0],
  );
}

/**
 * A scratch configuration holding the root module's variable blocks (and `extra`), initialised
 * without any provider: terraform evaluates every variable validation in a plan of it.
 */
function variablesOnly(extra = ''): { dir: string; plan: (...args: string[]) => string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'lro-tf-vars-'));
  writeFileSync(
    path.join(dir, 'main.tf'),
    `${blocksOf('terraform.tf', 'variable').join('\n')}\n${extra}`,
  );
  const init = terraform(dir, 'init', '-input=false', '-backend=false');
  if (!init.ok) throw new Error(init.output);
  return {
    dir,
    plan: (...args: string[]) => {
      const run = terraform(dir, 'plan', '-input=false', '-lock=false', '-no-color', ...args);
      return run.ok ? '' : run.output;
    },
  };
}

beforeAll(async () => {
  modules.set('', await load(''));
  for (const [name] of mod('').calls) {
    const dir = callDir(name);
    modules.set(dir, await load(dir));
  }
});

/** A module's text without its comments (which may name what the code no longer does). */
const code = (m: Module) => m.text.replace(/^\s*#.*$/gm, '');

const allResources = () =>
  [...modules.values()].flatMap((m) =>
    [...m.resources].map(([address, body]) => ({ dir: m.dir, address, body })),
  );

describe('root variables', () => {
  it('accept every default and terraform.tfvars.example (terraform plan of the variables)', () => {
    const scratch = variablesOnly();
    try {
      // The example as the walkthrough uses it: copied to terraform.tfvars, loaded automatically.
      copyFileSync(
        path.join(repoRoot, 'terraform.tfvars.example'),
        path.join(scratch.dir, 'terraform.tfvars'),
      );
      expect(scratch.plan()).toBe('');
      // Every default at once: only the one required variable is given.
      rmSync(path.join(scratch.dir, 'terraform.tfvars'));
      expect(scratch.plan('-var=project_id=my-lro-project')).toBe('');
      // The check is not vacuous: a value the validations refuse fails the plan.
      expect(
        scratch.plan('-var=project_id=my-lro-project', '-var=bigtable_instance_name=lro'),
      ).toMatch(/bigtable_instance_name must be 6 to 33/);
      // Both subscriber deliveries plan; anything else, or a pull subscriber allowed to scale to
      // zero (nothing would wake it), is refused.
      expect(scratch.plan('-var=project_id=my-lro-project', '-var=subscriber_delivery=pull')).toBe(
        '',
      );
      expect(
        scratch.plan('-var=project_id=my-lro-project', '-var=subscriber_delivery=poll'),
      ).toMatch(/subscriber_delivery must be push or pull/);
      expect(
        scratch.plan(
          '-var=project_id=my-lro-project',
          '-var=subscriber_delivery=pull',
          '-var=subscriber_pull_min_instances=0',
        ),
      ).toMatch(/subscriber_pull_min_instances must be a whole number of at least 1/);
    } finally {
      rmSync(scratch.dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('alert policies on log-based metrics', () => {
  const monitoring = () => mod('infra/monitoring');

  it('wait at least 10 minutes after each metric they name, and name it through that wait', () => {
    const m = monitoring();
    const policies = [...m.resources].filter(([a]) =>
      a.startsWith('google_monitoring_alert_policy.'),
    );
    const waited: string[] = [];
    for (const [address, body] of policies) {
      const text = JSON.stringify(body);
      // A user metric named directly (or by a name known before the metric exists) is a race.
      expect(text, address).not.toMatch(/google_logging_metric\.\w+\.name/);
      expect(text, address).not.toContain('local.metric_names');
      const uses = [...text.matchAll(/time_sleep\.(\w+)\.triggers\[\\"(\w+)\\"\]/g)];
      if (text.includes('local.user_metric')) expect(uses.length, address).toBeGreaterThan(0);
      for (const [, sleep = '', key = ''] of uses) {
        const wait = resource('infra/monitoring', `time_sleep.${sleep}`);
        expect(asBody(first(wait.triggers))[key] ?? asBody(wait.triggers)[key], address).toMatch(
          /^\$\{google_logging_metric\.\w+(\[[^\]]+\])?\.name\}$/,
        );
        expect(seconds('infra/monitoring', wait.create_duration), address).toBeGreaterThanOrEqual(
          600,
        );
        waited.push(address);
      }
    }
    expect(waited).toContain('google_monitoring_alert_policy.dead_letters');
  });

  it('build the metric filters from names known at plan time, the functions’ own names', () => {
    const call = callOf('infra/monitoring');
    for (const [input, fn] of [
      ['api_service_name', ['infra/functions', 'google_cloudfunctions2_function.operations']],
      [
        'subscriber_service_name',
        ['infra/functions', 'google_cloudfunctions2_function.subscriber'],
      ],
      ['sweeper_service_name', ['infra/sweeper', 'google_cloudfunctions2_function.sweeper']],
    ] as const) {
      // Not an attribute of a resource (that would wait for the function's build)...
      const local = /^\$\{local\.(\w+)\}$/.exec(String(call[input]))?.[1];
      expect(local, input).toBeDefined();
      let name = String(mod('').locals[local ?? '']);
      expect(name, input).not.toMatch(/module\.|google_/);
      if (input === 'subscriber_service_name') {
        // With subscriber_delivery = "pull" the pull subscriber's service, named from the prefix
        // too (known at plan time); otherwise the subscriber function.
        const pull = /^\$\{var\.subscriber_delivery == "pull" \? local\.(\w+) : "(.+)"\}$/.exec(
          name,
        );
        expect(pull, name).not.toBeNull();
        expect(callOf('infra/subscriber-pull').name).toBe(expr(`local.${pull?.[1]}`));
        expect(String(mod('').locals[pull?.[1] ?? ''])).toBe(
          `${expr('var.name_prefix')}-subscriber-pull`,
        );
        name = pull?.[2] ?? '';
      }
      // ... and the same name the function is created with, from the same prefix.
      expect(name, input).toBe(String(resource(fn[0], fn[1]).name));
      expect(callOf(fn[0]).name_prefix, input).toBe(expr('var.name_prefix'));
    }
    for (const [address, body] of monitoring().resources) {
      if (!address.startsWith('google_logging_metric.')) continue;
      expect(JSON.stringify(body.filter), address).not.toMatch(/module\.|google_/);
    }
  });
});

describe('Pub/Sub service agent', () => {
  it('is created with google_project_service_identity before its grants, which take its member', () => {
    const identities = allResources().filter(({ address }) =>
      address.startsWith('google_project_service_identity.'),
    );
    expect(identities).toHaveLength(1);
    const [identity] = identities;
    expect(identity?.body.service).toBe('pubsub.googleapis.com');
    expect(identity?.body.provider).toBe(expr('google-beta'));
    // The grants of infra/push-subscription take the member from that resource's output.
    const services = mod(identity?.dir ?? '');
    const output = [...services.outputs].find(([, o]) =>
      String(o.value).includes(`${identity?.address}.member`),
    );
    expect(output, 'an output with the identity member').toBeDefined();
    const local = /^\$\{local\.(\w+)\}$/.exec(
      String(callOf('infra/push-subscription').pubsub_service_agent),
    )?.[1];
    expect(mod('').locals[local ?? '']).toBe(
      expr(
        `module.${[...mod('').calls].find(([n]) => callDir(n) === identity?.dir)?.[0]}.${output?.[0]}`,
      ),
    );
    // No e-mail address of the agent is put together by hand any more.
    for (const m of modules.values()) expect(m.text, m.dir || 'root').not.toMatch(/service-\$\{/);
    // The beta provider is declared in the root and in the module, in step with google.
    const providers = (m: Module) =>
      Object.assign({}, ...m.terraform.flatMap((t) => (t.required_providers as Body[]) ?? []));
    const root = providers(mod(''));
    expect(asBody(root['google-beta']).source).toBe('hashicorp/google-beta');
    expect(asBody(root['google-beta']).version).toBe(asBody(root.google).version);
    expect(asBody(providers(services)['google-beta']).source).toBe('hashicorp/google-beta');
  });
});

describe('IAM propagation', () => {
  it('waits at least 120 s after every grant that something then relies on', () => {
    const waits = allResources().filter(
      ({ address, body }) =>
        address.startsWith('time_sleep.') && /_iam_member\./.test(JSON.stringify(body.triggers)),
    );
    // The build account's grants, and the push account's invoker grant on the subscriber.
    expect(waits.length).toBeGreaterThanOrEqual(2);
    for (const { dir, address, body } of waits) {
      expect(seconds(dir, body.create_duration), `${dir} ${address}`).toBeGreaterThanOrEqual(120);
    }
  });
});

describe('least privilege', () => {
  it('grants the build account Logs Writer, Artifact Registry Writer and Storage Object Viewer, each where it is used', () => {
    for (const m of modules.values()) {
      expect(code(m), m.dir || 'root').not.toContain('roles/cloudbuild.builds.builder');
    }
    const identities = mod('infra/identities');
    const projectGrants = [...identities.resources].filter(
      ([a, b]) =>
        a.startsWith('google_project_iam_member.') && String(b.member).includes('.build.'),
    );
    expect(projectGrants.map(([, b]) => b.role)).toEqual(['roles/logging.logWriter']);

    const functions = mod('infra/functions');
    const grant = (type: string, role: string) => {
      const found = [...functions.resources].filter(
        ([a, b]) => a.startsWith(`${type}.`) && b.role === role,
      );
      expect(found, `${type} ${role}`).toHaveLength(1);
      const [address, body] = found[0] ?? ['', {}];
      expect(body.member, address).toBe(expr('var.build_service_account_member'));
      return { address, body };
    };
    const writer = grant(
      'google_artifact_registry_repository_iam_member',
      'roles/artifactregistry.writer',
    );
    const repository = /^\$\{(google_artifact_registry_repository\.\w+)\.name\}$/.exec(
      String(writer.body.repository),
    )?.[1];
    expect(repository).toBeDefined();
    const viewer = grant('google_storage_bucket_iam_member', 'roles/storage.objectViewer');
    expect(viewer.body.bucket).toBe(expr('google_storage_bucket.source.name'));
    expect(callOf('infra/functions').build_service_account_member).toBe(
      expr('module.identities.build_member'),
    );

    // Every function builds into that repository, as the build account, once the grants are
    // effective: the account's name is read from the wait that follows both grants.
    const wait = [...functions.resources].find(([a]) => a.startsWith('time_sleep.build'));
    expect(wait).toBeDefined();
    const [waitAddress, waitBody] = wait ?? ['', {}];
    const triggers = JSON.stringify(waitBody.triggers);
    expect(triggers).toContain(`${writer.address}.id`);
    expect(triggers).toContain(`${viewer.address}.id`);
    expect(functions.outputs.get('build_service_account_id')?.value).toBe(
      expr(`${waitAddress}.triggers["service_account"]`),
    );
    expect(functions.outputs.get('docker_repository')?.value).toBe(expr(`${repository}.id`));
    for (const name of ['operations', 'subscriber']) {
      const build = first(
        resource('infra/functions', `google_cloudfunctions2_function.${name}`).build_config,
      );
      expect(build.service_account, name).toBe(expr(`${waitAddress}.triggers["service_account"]`));
      expect(build.docker_repository, name).toBe(expr(`${repository}.id`));
    }
    const sweeper = first(
      resource('infra/sweeper', 'google_cloudfunctions2_function.sweeper').build_config,
    );
    expect(sweeper.service_account).toBe(expr('var.build_service_account_id'));
    expect(sweeper.docker_repository).toBe(expr('var.docker_repository'));
    expect(callOf('infra/sweeper').build_service_account_id).toBe(
      expr('module.functions.build_service_account_id'),
    );
    expect(callOf('infra/sweeper').docker_repository).toBe(
      expr('module.functions.docker_repository'),
    );
  });

  it('lets only internal traffic reach the sweeper: Cloud Scheduler of the same project is internal', () => {
    const sweeper = resource('infra/sweeper', 'google_cloudfunctions2_function.sweeper');
    expect(first(sweeper.service_config).ingress_settings).toBe('ALLOW_INTERNAL_ONLY');
  });

  it('grants no Pub/Sub viewer role (the code never reads a topic it was not granted)', () => {
    for (const m of modules.values())
      expect(code(m), m.dir || 'root').not.toContain('roles/pubsub.viewer');
  });

  it("alerts when the API's account deletes a subscription that is not one of its own listeners", () => {
    const m = mod('infra/monitoring');
    const [address, policy] =
      [...m.resources].find(
        ([a, b]) =>
          a.startsWith('google_monitoring_alert_policy.') &&
          JSON.stringify(b).includes('DeleteSubscription'),
      ) ?? [];
    expect(address).toBeDefined();
    const condition = first(first(policy?.conditions).condition_matched_log);
    const filter = String(condition.filter);
    expect(filter).toContain(
      'protoPayload.methodName="google.pubsub.v1.Subscriber.DeleteSubscription"',
    );
    expect(filter).toContain(
      `protoPayload.authenticationInfo.principalEmail="${expr('var.api_service_account_email')}"`,
    );
    // A log-match condition needs a notification rate limit.
    expect(first(first(policy?.alert_strategy).notification_rate_limit).period).toBeDefined();
    expect(callOf('infra/monitoring').api_service_account_email).toBe(
      expr('module.identities.api_email'),
    );

    // The listeners' own subscriptions (waits on the wake-up topic, watches on the notifications
    // topic) are excluded by a pattern the waiter's names match; nothing else is.
    const excluded = /NOT protoPayload\.resourceName=~\\?"([^"\\]+)\\?"/.exec(filter)?.[1];
    expect(excluded).toBeDefined();
    const waiter = readFileSync(path.join(repoRoot, 'shared/service/wait/hub.ts'), 'utf8');
    expect(waiter).toMatch(/`\$\{topic\.slice\(0, 200\)\}-waiter`/);
    expect(waiter).toMatch(/`\$\{this\.prefix\}-\$\{randomBytes\(6\)\.toString\('hex'\)\}`/);
    const instance = readFileSync(
      path.join(repoRoot, 'shared/service/runtime/instance.ts'),
      'utf8',
    );
    expect(instance).toMatch(/`\$\{config\.topics\.notifications\.slice\(0, 200\)\}-watch`/);
    const pattern = new RegExp(
      String(excluded)
        .replace(expr('var.wakeups_topic_name'), 'lro-wakeups')
        .replace(expr('var.notifications_topic_name'), 'lro-notifications')
        .replace(expr('var.project_id'), 'p'),
    );
    const hex = randomBytes(6).toString('hex');
    expect(`projects/p/subscriptions/lro-wakeups-waiter-${hex}`).toMatch(pattern);
    expect(`projects/p/subscriptions/lro-notifications-watch-${hex}`).toMatch(pattern);
    expect('projects/p/subscriptions/lro-events-to-subscriber').not.toMatch(pattern);
    expect(`projects/p/subscriptions/lro-notifications-waiter-${hex}`).not.toMatch(pattern);
    expect('projects/p/subscriptions/lro-wakeups-waiter-x').not.toMatch(pattern);
    expect(callOf('infra/monitoring').wakeups_topic_name).toBe(
      expr('module.pubsub.wakeups_topic_name'),
    );
  });
});

describe('a second plan of the same configuration', () => {
  it('has no module-level depends_on and no data source with depends_on', () => {
    for (const [name, call] of mod('').calls)
      expect(call.depends_on, `module.${name}`).toBeUndefined();
    for (const m of modules.values()) {
      for (const [address, body] of m.data) {
        expect(body.depends_on, `${m.dir || 'root'} data.${address}`).toBeUndefined();
      }
    }
  });

  it('orders every module after the APIs through the project ID the services module hands on', () => {
    const services = [...mod('').calls].find(([, c]) => c.source === './infra/services')?.[0];
    const output = mod('infra/services').outputs.get('project_id');
    expect(output?.value).toBe(expr('var.project_id'));
    expect(JSON.stringify(output?.depends_on)).toContain('time_sleep.propagation');
    for (const [name, call] of mod('').calls) {
      if (name === services) continue;
      expect(call.project_id, `module.${name}`).toBe(expr(`module.${services}.project_id`));
    }
  });

  /**
   * The real terraform, on a model of the root module's wiring that needs no provider: the
   * services module becomes a terraform_data wait whose trigger is the API list, with the
   * project_id output declared as infra/services declares it; every other module call becomes a
   * module holding a data source and a grant (terraform_data) built from it and from its
   * project_id, called with the same project_id expression and the same depends_on as in
   * terraform.tf. Applied with one API list, then planned with a longer one (page_token_secret_id
   * adds Secret Manager): nothing in those modules may change.
   */
  it('plans no change to what the modules build when the API list changes (terraform on a model)', () => {
    const root = mod('');
    const services = [...root.calls].find(([, c]) => c.source === './infra/services')?.[0] ?? '';
    const output = mod('infra/services').outputs.get('project_id');
    const dir = mkdtempSync(path.join(tmpdir(), 'lro-tf-replan-'));
    try {
      const write = (file: string, text: string) => {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      };
      const dependsOn = (value: unknown) =>
        Array.isArray(value)
          ? `  depends_on = [${value
              .map((v) =>
                String(v)
                  .replace(/^\$\{(.*)\}$/, '$1')
                  .replace('time_sleep.', 'terraform_data.'),
              )
              .join(', ')}]\n`
          : '';
      write(
        'services/main.tf',
        [
          'variable "project_id" {\n  type = string\n}',
          'variable "services" {\n  type = list(string)\n}',
          'resource "terraform_data" "propagation" {\n  triggers_replace = var.services\n}',
          output
            ? `output "project_id" {\n  value = ${String(output.value).replace(/^\$\{(.*)\}$/, '$1')}\n${dependsOn(output.depends_on)}}`
            : '',
        ].join('\n'),
      );
      write(
        'consumer/main.tf',
        [
          'variable "project_id" {\n  type = string\n}',
          // Read at plan time unless deferred, as data.google_project and data.archive_file are.
          'data "terraform_remote_state" "project" {\n  backend  = "local"\n  config   = { path = "project.tfstate" }\n}',
          'resource "terraform_data" "grant" {\n  triggers_replace = [var.project_id, data.terraform_remote_state.project.outputs.number]\n}',
        ].join('\n'),
      );
      write(
        'project.tfstate',
        JSON.stringify({
          version: 4,
          terraform_version: '1.11.0',
          serial: 1,
          lineage: '00000000-0000-0000-0000-000000000000',
          outputs: { number: { value: '123456789', type: 'string' } },
          resources: [],
        }),
      );
      const calls = [...root.calls]
        .filter(([name]) => name !== services)
        .map(([name, call]) => {
          const project = String(call.project_id).replace(/^\$\{(.*)\}$/, '$1');
          expect(project, `module.${name}`).toMatch(/^(var\.project_id|module\.\w+\.project_id)$/);
          return `module "${name}" {\n  source     = "./consumer"\n  project_id = ${project}\n${dependsOn(call.depends_on)}}`;
        });
      write(
        'main.tf',
        [
          'variable "project_id" {\n  type = string\n}',
          'variable "services" {\n  type = list(string)\n}',
          `module "${services}" {\n  source     = "./services"\n  project_id = var.project_id\n  services   = var.services\n}`,
          ...calls,
        ].join('\n'),
      );
      const run = (...args: string[]) => {
        const result = terraform(dir, ...args);
        expect(result.ok, result.output).toBe(true);
        return result.output;
      };
      run('init', '-input=false');
      run('apply', '-auto-approve', '-input=false', '-var=project_id=p', '-var=services=["a"]');
      run('plan', '-input=false', '-out=replan', '-var=project_id=p', '-var=services=["a","b"]');
      const plan = JSON.parse(run('show', '-json', 'replan')) as {
        resource_changes: { address: string; change: { actions: string[] } }[];
      };
      const changed = plan.resource_changes
        .filter((c) => !c.address.startsWith(`module.${services}.`))
        .filter((c) => c.change.actions.join() !== 'no-op')
        .map((c) => `${c.address}: ${c.change.actions.join('/')}`);
      expect(changed).toEqual([]);
      // The wait itself runs again, so the modules are still ordered after the new API.
      expect(
        plan.resource_changes.find(
          (c) => c.address === `module.${services}.terraform_data.propagation`,
        )?.change.actions,
      ).toEqual(['delete', 'create']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('feeds grants and the source archive only values that stay known in later plans', () => {
    // The archive (and so the object name every function builds from) reads only files and names.
    for (const m of modules.values()) {
      for (const [address, body] of m.data) {
        const refs = [...JSON.stringify(body).matchAll(/\$\{([^}]*)\}/g)].map((x) => x[1] ?? '');
        for (const ref of refs) {
          expect(ref, `${m.dir} data.${address}`).not.toMatch(/\b(google_\w+|module)\./);
        }
      }
    }
    // No grant's member comes from a data source (read again, and unknown, whenever deferred).
    for (const { dir, address, body } of allResources()) {
      if (!/_iam_member\./.test(address)) continue;
      expect(String(body.member), `${dir} ${address}`).not.toMatch(/data\./);
    }
    expect(mod('').data.size).toBe(0);
  });
});

describe('smaller points', () => {
  it('mounts a pinned page-token secret version, never "latest"', () => {
    const service = first(
      resource('infra/functions', 'google_cloudfunctions2_function.operations').service_config,
    );
    const content = first(first(asBody(service.dynamic).secret_environment_variables).content);
    expect(content.version).toBe(expr('var.page_token_secret_version'));
    expect(callOf('infra/functions').page_token_secret_version).toBe(
      expr('var.page_token_secret_version'),
    );
    const scratch = variablesOnly();
    try {
      const base = [
        '-var=project_id=my-lro-project',
        '-var=page_token_secret_id=lro-page-token-key',
      ];
      expect(scratch.plan(...base)).toMatch(/page_token_secret_version/);
      expect(scratch.plan(...base, '-var=page_token_secret_version=latest')).toMatch(
        /page_token_secret_version/,
      );
      expect(scratch.plan(...base, '-var=page_token_secret_version=3')).toBe('');
    } finally {
      rmSync(scratch.dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('keeps the live source archive: no lifecycle rule deletes objects by age', () => {
    const bucket = resource('infra/functions', 'google_storage_bucket.source');
    expect(bucket.lifecycle_rule).toBeUndefined();
  });

  it('collects Bigtable cells with gc_rules (union of max age and one version; 200 for the history)', () => {
    const bigtable = mod('infra/bigtable');
    const policies = [...bigtable.resources].filter(([a]) =>
      a.startsWith('google_bigtable_gc_policy.'),
    );
    expect(policies.map(([a]) => a).sort()).toEqual([
      'google_bigtable_gc_policy.history',
      'google_bigtable_gc_policy.index',
      'google_bigtable_gc_policy.state',
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), 'lro-tf-gc-'));
    try {
      for (const [address, body] of policies) {
        for (const drifting of ['max_age', 'max_version', 'mode']) {
          expect(body[drifting], `${address} ${drifting}`).toBeUndefined();
        }
        const local = /^\$\{local\.(\w+)\}$/.exec(String(body.gc_rules))?.[1];
        const rules = String(local ? bigtable.locals[local] : body.gc_rules).replace(
          /^\$\{([\s\S]*)\}$/,
          '$1',
        );
        writeFileSync(
          path.join(dir, 'main.tf'),
          `variable "retention_seconds" {\n  type = number\n}\noutput "rules" {\n  value = ${rules}\n}\n`,
        );
        const init = terraform(dir, 'init', '-input=false', '-backend=false');
        expect(init.ok, init.output).toBe(true);
        const apply = terraform(
          dir,
          'apply',
          '-auto-approve',
          '-input=false',
          '-lock=false',
          '-var=retention_seconds=2592000',
        );
        expect(apply.ok, apply.output).toBe(true);
        const value = JSON.parse(terraform(dir, 'output', '-raw', 'rules').output) as unknown;
        const versions = address === 'google_bigtable_gc_policy.history' ? 200 : 1;
        expect(value, address).toEqual({
          mode: 'union',
          rules: [{ max_age: '2592000s' }, { max_version: versions }],
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('gives push deliveries an acknowledgement deadline at least 20 s above the subscriber timeout', () => {
    const root = mod('');
    for (const dir of ['infra/push-subscription', 'infra/dead-letter-store']) {
      expect(callOf(dir).ack_deadline_seconds, dir).toBe(expr('local.push_ack_deadline_seconds'));
    }
    const ack = String(root.locals.push_ack_deadline_seconds).replace(/^\$\{([\s\S]*)\}$/, '$1');
    expect(ack).toMatch(/var\.subscriber_timeout_seconds/);
    const scratch = variablesOnly(
      `locals {\n  push_ack_deadline_seconds = ${ack}\n}\noutput "ack" {\n  value = local.push_ack_deadline_seconds\n}\n`,
    );
    try {
      for (const timeout of [
        10,
        60,
        Number(
          /<= (\d+)/.exec(
            JSON.stringify(root.variables.get('subscriber_timeout_seconds')?.validation),
          )?.[1],
        ),
      ]) {
        const apply = terraform(
          scratch.dir,
          'apply',
          '-auto-approve',
          '-input=false',
          '-lock=false',
          '-var=project_id=my-lro-project',
          `-var=subscriber_timeout_seconds=${timeout}`,
        );
        expect(apply.ok, apply.output).toBe(true);
        const ack = Number(terraform(scratch.dir, 'output', '-raw', 'ack').output);
        expect(ack - timeout, `timeout ${timeout}`).toBeGreaterThanOrEqual(20);
        expect(ack, `timeout ${timeout}`).toBeLessThanOrEqual(600);
      }
    } finally {
      rmSync(scratch.dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('says how far the apply-latency histogram reaches', () => {
    const text = mod('infra/monitoring').text;
    const latency = resource('infra/monitoring', 'google_logging_metric.apply_latency');
    const buckets = first(first(latency.bucket_options).exponential_buckets);
    const topMinutes =
      (Number(buckets.scale) *
        Number(buckets.growth_factor) ** Number(buckets.num_finite_buckets)) /
      60_000;
    const stated = /# 1 ms to about (\d+) minutes/.exec(text)?.[1];
    expect(stated).toBeDefined();
    expect(Math.abs(Number(stated) - topMinutes) / topMinutes).toBeLessThan(0.05);
  });
});

describe('provider version', () => {
  it('keeps the google provider constraint in step with the schema the checks read, and says so', () => {
    const lib = path.dirname(require.resolve('@cdktf/provider-google'));
    const schemaVersion = (
      JSON.parse(readFileSync(path.join(lib, '..', 'package.json'), 'utf8')) as {
        cdktf: { provider: { version: string } };
      }
    ).cdktf.provider.version;
    const major = Number(schemaVersion.split('.')[0]);
    const providers = Object.assign(
      {},
      ...mod('').terraform.flatMap((t) => (t.required_providers as Body[]) ?? []),
    ) as Record<string, Body>;
    for (const name of ['google', 'google-beta']) {
      const constraint = String(providers[name]?.version);
      const upper = /< (\d+)\.0/.exec(constraint)?.[1];
      expect(Number(upper), `${name} ${constraint}`).toBe(major + 1);
    }
    const deploy = readFileSync(path.join(repoRoot, 'docs/deploy.md'), 'utf8');
    expect(deploy).toContain(`< ${major + 1}.0`);
    expect(deploy).toContain(schemaVersion);
  });
});
