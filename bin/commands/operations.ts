/**
 * The `lro` commands about operations: create, get, list, children, history, tree, wait, watch,
 * cancel, delete. Their arguments are parsed here; the URL, the ID token and the exit codes are
 * the connection's (../connection.ts).
 */
import { parseArgs } from 'node:util';
import {
  type OperationsClient as Client,
  OperationsClient,
  type OperationTimes,
  type OrderByValue,
  WaitError,
  waitForOperation,
} from '../../shared/sdk/client.js';
import { Code, LroError } from '../../shared/sdk/errors.js';
import {
  AnySchema,
  type Operation,
  type OperationNode,
  toOperationName,
} from '../../shared/sdk/model.js';
import { renderProgressLine } from '../../shared/sdk/progress.js';
import {
  type CliEnv,
  type CliIo,
  type Connection,
  connect,
  describeApiError,
  Exit,
  errorOfReply,
  messageOf,
  resolveUrl,
  UsageError,
} from '../connection.js';
import { formatOperation, formatStatus, formatTree, namesOfTree } from '../format.js';
import { formatHistory, formatTimedList, formatTimes } from '../format-times.js';
import { readEvents } from '../sse.js';

type Command =
  | 'create'
  | 'get'
  | 'list'
  | 'children'
  | 'tree'
  | 'wait'
  | 'watch'
  | 'cancel'
  | 'delete'
  | 'history';

const commands: Record<Command, { name: boolean; options: string[] }> = {
  create: {
    name: false,
    options: ['id', 'parent', 'metadata', 'request-id', 'deadline', 'heartbeat-timeout'],
  },
  get: { name: true, options: [] },
  list: { name: false, options: ['filter', 'name', 'order-by', 'page-size', 'page-token', 'all'] },
  children: { name: true, options: ['order-by', 'page-size', 'page-token', 'all'] },
  history: { name: true, options: [] },
  tree: { name: true, options: ['max-depth'] },
  wait: { name: true, options: ['timeout'] },
  watch: { name: true, options: ['timeout'] },
  cancel: { name: true, options: [] },
  delete: { name: true, options: [] },
};

const optionSpec = {
  url: { type: 'string' },
  audience: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  id: { type: 'string' },
  parent: { type: 'string' },
  metadata: { type: 'string' },
  'request-id': { type: 'string' },
  deadline: { type: 'string' },
  'heartbeat-timeout': { type: 'string' },
  filter: { type: 'string' },
  name: { type: 'string' },
  'order-by': { type: 'string' },
  'page-size': { type: 'string' },
  'page-token': { type: 'string' },
  all: { type: 'boolean' },
  'max-depth': { type: 'string' },
  timeout: { type: 'string' },
} as const;

type Values = {
  [K in keyof typeof optionSpec]?: (typeof optionSpec)[K]['type'] extends 'boolean'
    ? boolean
    : string;
};

interface Context {
  /** Gives up when an answer does not start within the response timeout. */
  client: Client;
  /** For the long polls of `wait`, which the server answers only at their end. */
  longPollClient: Client;
  connection: Connection;
  values: Values;
  name: string;
  json: boolean;
  io: CliIo;
}

/**
 * Runs one command line of an operation command (or `--help`, which prints `usage`); resolves
 * with the exit code.
 */
export async function runOperationCommand(
  argv: string[],
  env: CliEnv,
  io: CliIo,
  usage: string,
): Promise<number> {
  let json = false;
  let baseUrl: string | undefined;
  try {
    const parsed = parse(argv);
    json = parsed.values.json === true;
    if (parsed.help) {
      io.stdout(usage);
      return Exit.ok;
    }
    baseUrl = resolveUrl(parsed.values.url ?? env.apiUrl);
    const connection = await connect(baseUrl, parsed.values.audience, io);
    const getHeaders = connection.headers;
    const ctx: Context = {
      client: new OperationsClient({ baseUrl, fetch: connection.fetch, getHeaders }),
      longPollClient: new OperationsClient({
        baseUrl,
        fetch: connection.longPollFetch,
        getHeaders,
      }),
      connection,
      values: parsed.values,
      name: parsed.name,
      json,
      io,
    };
    return await handlers[parsed.command](ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`lro: ${err.message}\nRun "lro --help" for usage.\n`);
      return Exit.usage;
    }
    const error = err instanceof LroError ? err : new LroError(Code.UNKNOWN, messageOf(err));
    if (json) io.stdout(`${JSON.stringify(error.toJSON(), null, 2)}\n`);
    io.stderr(`lro: ${describeApiError(error, baseUrl)}\n`);
    return Exit.apiError;
  }
}

interface Parsed {
  command: Command;
  name: string;
  values: Values;
  help: boolean;
}

function parse(argv: string[]): Parsed {
  let result: { values: Values; positionals: string[] };
  try {
    result = parseArgs({ args: argv, options: optionSpec, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(messageOf(err).split('\n')[0] ?? 'bad arguments');
  }
  const { values, positionals } = result;
  const [command, ...rest] = positionals;
  if (command === undefined || command === 'help') {
    if (values.help || command === 'help') {
      return { command: 'get', name: '', values, help: true };
    }
    throw new UsageError('a command is required');
  }
  if (!Object.hasOwn(commands, command)) throw new UsageError(`unknown command "${command}"`);
  const spec = commands[command as Command];
  if (values.help) return { command: command as Command, name: '', values, help: true };
  const allowed = new Set(['url', 'audience', 'json', 'help', ...spec.options]);
  for (const key of Object.keys(values)) {
    if (!allowed.has(key)) throw new UsageError(`${command} does not take --${key}`);
  }
  let name = '';
  if (spec.name) {
    const [given, ...extra] = rest;
    if (given === undefined) throw new UsageError(`${command} needs an operation NAME`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    name = nameArgument(given, command);
  } else if (rest.length > 0) {
    throw new UsageError(`unexpected argument "${rest[0]}"`);
  }
  if (values.all && values['page-token'] !== undefined) {
    throw new UsageError('--all and --page-token do not go together');
  }
  return { command: command as Command, name, values, help: false };
}

function nameArgument(given: string, what: string): string {
  try {
    return toOperationName(given);
  } catch {
    throw new UsageError(`${what}: "${given}" is not an operation ID or name`);
  }
}

/** Milliseconds for "30s", "1.5s", "500ms", "2m", "1h" or a plain number of seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a duration such as 30s, 500ms or 2m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * unit;
}

/** `--deadline`: an RFC 3339 timestamp as given, or a duration from now (10m) as one. */
function deadlineArgument(text: string): string {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text.trim())) return text.trim();
  try {
    return new Date(Date.now() + parseDuration(text)).toISOString();
  } catch {
    throw new UsageError(
      `--deadline: "${text}" is neither an RFC 3339 time (2026-12-01T10:00:00Z) nor a duration such as 10m`,
    );
  }
}

/** A duration option (30s, 2m, 500ms) as a Duration string for the API ("30s"). */
function durationArgument(text: string, option: string): string {
  try {
    return `${parseDuration(text) / 1000}s`;
  } catch {
    throw new UsageError(`${option}: "${text}" is not a duration such as 30s, 500ms or 2m`);
  }
}

function nonNegativeInt(text: string, option: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`--${option} must be a non-negative integer`);
  return Number(text);
}

function printJson(ctx: Context, value: unknown) {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Exit code for a finished or unfinished operation. */
export function exitCodeOf(operation: Operation): number {
  if (!operation.done) return Exit.notDone;
  return operation.error ? Exit.failed : Exit.ok;
}

const handlers: Record<Command, (ctx: Context) => Promise<number>> = {
  async create(ctx) {
    const { values } = ctx;
    let metadata: Record<string, unknown> | undefined;
    if (values.metadata !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(values.metadata);
      } catch {
        throw new UsageError('--metadata must be JSON');
      }
      const checked = AnySchema.safeParse(parsed);
      if (!checked.success) {
        throw new UsageError(
          '--metadata must be a JSON object with "@type", e.g. {"@type":"type.googleapis.com/acme.Progress","percent":0}',
        );
      }
      metadata = checked.data;
    }
    const op = await ctx.client.create({
      ...(values.id !== undefined ? { operationId: values.id } : {}),
      ...(values.parent !== undefined ? { parent: nameArgument(values.parent, '--parent') } : {}),
      ...(metadata ? { metadata: metadata as { '@type': string } } : {}),
      ...(values['request-id'] !== undefined ? { requestId: values['request-id'] } : {}),
      ...(values.deadline !== undefined ? { deadline: deadlineArgument(values.deadline) } : {}),
      ...(values['heartbeat-timeout'] !== undefined
        ? { heartbeatTimeout: durationArgument(values['heartbeat-timeout'], '--heartbeat-timeout') }
        : {}),
    });
    if (ctx.json) printJson(ctx, op);
    else ctx.io.stdout(`${formatOperation(op)}\n`);
    return Exit.ok;
  },

  async get(ctx) {
    if (ctx.json) {
      printJson(ctx, await ctx.client.get(ctx.name));
      return Exit.ok;
    }
    const [op, times] = await Promise.all([
      ctx.client.get(ctx.name),
      ctx.client.times(ctx.name).catch(() => undefined),
    ]);
    const lines = [formatOperation(op)];
    if (times) lines.push(...formatTimes(times, Date.now()));
    ctx.io.stdout(`${lines.join('\n')}\n`);
    return Exit.ok;
  },

  list(ctx) {
    const filter = listFilter(ctx.values.filter, ctx.values.name);
    const orderBy = orderByArgument(ctx.values['order-by']);
    return listing(ctx, (pageSize, pageToken) =>
      ctx.client.list({
        ...(filter !== undefined ? { filter } : {}),
        ...(pageSize !== undefined ? { pageSize } : {}),
        ...(pageToken ? { pageToken } : {}),
        ...(orderBy ? { orderBy } : {}),
        view: 'FULL',
      }),
    );
  },

  children(ctx) {
    const orderBy = orderByArgument(ctx.values['order-by']);
    return listing(ctx, (pageSize, pageToken) =>
      ctx.client.children(ctx.name, {
        ...(pageSize !== undefined ? { pageSize } : {}),
        ...(pageToken ? { pageToken } : {}),
        ...(orderBy ? { orderBy } : {}),
        view: 'FULL',
      }),
    );
  },

  async history(ctx) {
    const history = await ctx.client.history(ctx.name);
    if (ctx.json) printJson(ctx, history);
    else ctx.io.stdout(`${formatHistory(history, Date.now())}\n`);
    return Exit.ok;
  },

  async tree(ctx) {
    const maxDepth =
      ctx.values['max-depth'] === undefined
        ? undefined
        : nonNegativeInt(ctx.values['max-depth'], 'max-depth');
    const tree = await ctx.client.traverse(ctx.name, maxDepth === undefined ? {} : { maxDepth });
    if (ctx.json) {
      printJson(ctx, tree);
      return Exit.ok;
    }
    ctx.io.stdout(`${formatTree(tree, await statesOf(ctx.client, tree))}\n`);
    return Exit.ok;
  },

  async wait(ctx) {
    const timeout =
      ctx.values.timeout === undefined ? undefined : parseDuration(ctx.values.timeout);
    const live = ctx.json ? undefined : new LiveLine(ctx.io.stderr, ctx.io.stderrIsTty === true);
    const draw = (op: Operation) =>
      live?.update(fitToWidth(renderProgressLine(op), ctx.io.columns));
    const started = Date.now();
    const first = await ctx.client.get(ctx.name);
    if (!ctx.json && !first.done) ctx.io.stderr(`waiting for ${first.name}\n`);
    draw(first);
    let op = first;
    if (!first.done) {
      try {
        op = await waitForOperation(ctx.longPollClient, ctx.name, {
          ...(timeout !== undefined
            ? { timeout: Math.max(0, timeout - (Date.now() - started)) }
            : {}),
          // Short server waits keep the bar moving; one long wait is enough for scripts.
          ...(ctx.json ? {} : { pollTimeout: 1_000 }),
          ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
          onMetadata: (_metadata, latest) => draw(latest),
        });
      } catch (err) {
        if (!(err instanceof WaitError) || err.code !== Code.DEADLINE_EXCEEDED) throw err;
        op = err.operation ?? (await ctx.client.get(ctx.name));
      }
    }
    draw(op);
    live?.end();
    return finish(ctx, op, timeout);
  },

  async watch(ctx) {
    const timeout =
      ctx.values.timeout === undefined ? undefined : parseDuration(ctx.values.timeout);
    const live = ctx.json ? undefined : new LiveLine(ctx.io.stdout, ctx.io.stdoutIsTty === true);
    const deadline = new AbortController();
    const timer = timeout === undefined ? undefined : setTimeout(() => deadline.abort(), timeout);
    const signal = ctx.io.signal
      ? AbortSignal.any([ctx.io.signal, deadline.signal])
      : deadline.signal;
    let last: Operation | undefined;
    const seen = (op: Operation) => {
      last = op;
      if (ctx.json) ctx.io.stdout(`${JSON.stringify(op)}\n`);
      else live?.update(fitToWidth(`${renderProgressLine(op)}`, ctx.io.columns));
    };
    try {
      if (!ctx.json) ctx.io.stdout(`watching ${ctx.name}\n`);
      let failures = 0;
      while (!last?.done) {
        try {
          await followOnce(ctx, signal, seen);
          failures = 0;
        } catch (err) {
          if (signal.aborted || err instanceof LroError) throw err;
          if (last === undefined) {
            // Never connected: an API that is not there, which retrying does not change.
            throw new LroError(
              Code.UNAVAILABLE,
              `GET /v1/${ctx.name}:watch failed: ${messageOf(err)}`,
              { cause: err },
            );
          }
          // The stream broke (network, a restarted API): reconnect a few times.
          if (++failures > 3) {
            throw new LroError(Code.UNAVAILABLE, `watch of ${ctx.name} failed: ${messageOf(err)}`);
          }
          await new Promise((r) => setTimeout(r, 500 * failures));
        }
      }
    } catch (err) {
      if (!deadline.signal.aborted) throw err;
    } finally {
      if (timer) clearTimeout(timer);
      live?.end();
    }
    const op = last ?? (await ctx.client.get(ctx.name));
    if (ctx.json) {
      // The states were printed as they came; only the verdict is left.
      if (!op.done) ctx.io.stderr(`lro: ${op.name} not done after ${formatMs(timeout ?? 0)}\n`);
      return exitCodeOf(op);
    }
    return finish(ctx, op, timeout);
  },

  async cancel(ctx) {
    await ctx.client.cancel(ctx.name);
    if (ctx.json) printJson(ctx, {});
    else ctx.io.stdout(`cancellation of ${ctx.name} requested\n`);
    return Exit.ok;
  },

  async delete(ctx) {
    await ctx.client.delete(ctx.name);
    if (ctx.json) printJson(ctx, {});
    else ctx.io.stdout(`deleted ${ctx.name}\n`);
    return Exit.ok;
  },
};

/** Prints the end state of wait/watch and returns its exit code. */
function finish(ctx: Context, op: Operation, timeout: number | undefined): number {
  if (ctx.json) printJson(ctx, op);
  else ctx.io.stdout(`${formatOperation(op)}\n`);
  if (!op.done) {
    ctx.io.stderr(`lro: ${op.name} not done after ${formatMs(timeout ?? 0)}\n`);
  } else if (op.error && !ctx.json) {
    ctx.io.stderr(
      `lro: ${op.name} ${op.error.code === Code.CANCELLED ? 'was cancelled' : 'failed'}: ${formatStatus(op.error)}\n`,
    );
  }
  return exitCodeOf(op);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** One `:watch` stream: calls `seen` per state; returns at its end (done or server timeout). */
async function followOnce(
  ctx: Context,
  signal: AbortSignal,
  seen: (op: Operation) => void,
): Promise<void> {
  const { connection } = ctx;
  const res = await connection.fetch(`${connection.baseUrl}/v1/${ctx.name}:watch`, {
    headers: { accept: 'text/event-stream', ...(await connection.headers()) },
    signal,
  });
  if (!res.ok || !res.body) {
    const text = await res.text().catch(() => '');
    throw errorOfReply(res.status, text);
  }
  for await (const event of readEvents(res.body)) {
    if (event.event === 'operation') {
      const op = JSON.parse(event.data) as Operation;
      seen(op);
      if (op.done) return;
    } else if (event.event === 'error') {
      const body = JSON.parse(event.data) as unknown;
      throw errorOfReply(500, JSON.stringify(body));
    } else if (event.event === 'timeout' || event.event === 'end') {
      // The server ended the stream (its time limit, or its shutdown): reconnect.
      return;
    }
  }
}

/**
 * The list filter with `--name PREFIX` (an ID or name prefix) added: the API then reads only
 * that key range.
 */
function listFilter(filter: string | undefined, prefix: string | undefined): string | undefined {
  if (prefix === undefined) return filter;
  if (!/^(operations\/)?[a-z0-9-]*$/.test(prefix)) {
    throw new UsageError('--name takes the start of an operation ID, such as demo-');
  }
  const term = `name = "${prefix.startsWith('operations/') ? prefix : `operations/${prefix}`}*"`;
  return filter === undefined || filter.trim() === '' ? term : `(${filter}) AND ${term}`;
}

/** `--order-by`: newest first unless it says otherwise; `name` orders by ID. */
function orderByArgument(text: string | undefined): OrderByValue | undefined {
  const value = (text ?? 'create_time desc').trim().replace(/\s+/g, ' ');
  if (value === 'name') return undefined;
  if (value === 'create_time desc' || value === 'newest') return 'create_time desc';
  if (value === 'create_time asc' || value === 'create_time' || value === 'oldest') {
    return 'create_time asc';
  }
  throw new UsageError(
    '--order-by takes "create_time desc" (default), "create_time asc" or "name"',
  );
}

async function listing(
  ctx: Context,
  page: (
    pageSize: number | undefined,
    pageToken: string | undefined,
  ) => Promise<{ operations: Operation[]; nextPageToken: string; times?: OperationTimes[] }>,
): Promise<number> {
  const pageSize =
    ctx.values['page-size'] === undefined
      ? undefined
      : nonNegativeInt(ctx.values['page-size'], 'page-size');
  if (!ctx.values.all) {
    const reply = await page(pageSize, ctx.values['page-token']);
    if (ctx.json) printJson(ctx, reply);
    else {
      const text = formatTimedList(reply.operations, reply.times, Date.now(), reply.nextPageToken);
      ctx.io.stdout(`${text}\n`);
    }
    return Exit.ok;
  }
  const operations: Operation[] = [];
  const times: OperationTimes[] = [];
  let token = '';
  do {
    const reply = await page(pageSize, token);
    operations.push(...reply.operations);
    times.push(...(reply.times ?? []));
    token = reply.nextPageToken;
  } while (token);
  if (ctx.json) printJson(ctx, { operations });
  else ctx.io.stdout(`${formatTimedList(operations, times, Date.now())}\n`);
  return Exit.ok;
}

/** The states of a tree's operations (at most the first 500, 16 requests at a time). */
async function statesOf(client: Client, tree: OperationNode): Promise<Map<string, Operation>> {
  const names = namesOfTree(tree).slice(0, 500);
  const states = new Map<string, Operation>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      try {
        states.set(name, await client.get(name));
      } catch {
        // Deleted or expired meanwhile: shown by name only.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
  return states;
}

/** A status line redrawn in place on a terminal, or printed once per change otherwise. */
export class LiveLine {
  private last = '';
  private drawn = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
  ) {}

  update(line: string) {
    if (line === this.last) return;
    this.last = line;
    if (this.tty) {
      this.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      this.write(`${line}\n`);
    }
  }

  end() {
    if (this.tty && this.drawn) this.write('\n');
    this.drawn = false;
  }
}

function fitToWidth(line: string, columns: number | undefined): string {
  if (!columns || line.length < columns) return line;
  return `${line.slice(0, Math.max(0, columns - 2))}…`;
}
