/**
 * `lro dead-letters`: what reached the dead-letter topic, through the API's /v1/deadLetters.
 *
 *   lro dead-letters [list] [--page-size N] [--page-token T] [--all]
 *   lro dead-letters get ID
 *   lro dead-letters replay ID | replay --all
 *   lro dead-letters discard ID
 */
import { parseArgs } from 'node:util';
import {
  DEAD_LETTERS_PREFIX,
  type DeadLetter,
  DeadLetterIdSchema,
  type ListDeadLettersResponse,
} from '../../shared/sdk/dead-letters.js';
import { Code, LroError } from '../../shared/sdk/errors.js';
import { Exit, UsageError } from '../connection.js';

export const DEAD_LETTERS_USAGE = `Usage: lro dead-letters [list|get ID|replay ID|replay --all|discard ID] [options]

  list [--page-size N] [--page-token T] [--all]
                 dead letters, newest first
  get ID         one dead letter: reason, operation, attributes and the event
  replay ID      publish the event to the events topic again, then remove the entry
  replay --all   replay every dead letter
  discard ID     remove the entry

ID is "deadLetters/ID" or the ID alone. Options: --url, --audience, --json as for other commands.
`;

/** What the command needs from the CLI. */
export interface DeadLetterCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** One API request; resolves with the parsed JSON, rejects with an LroError. */
  request(method: string, path: string, body?: unknown): Promise<unknown>;
}

/** Runs the subcommand; resolves with the exit code (0 ok, 4 when a replay of --all failed). */
export async function runDeadLetters(argv: string[], io: DeadLetterCommandIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.split('\n')[0] : String(err));
  }
  const { values, positionals } = parsed;
  const [action = 'list', id, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const json = values.json === true;
  const print = (value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  const needId = () => {
    if (id === undefined) throw new UsageError(`dead-letters ${action} needs an ID`);
    return idOf(id);
  };
  const only = (allowed: string[]) => {
    for (const key of Object.keys(values)) {
      if (!['url', 'audience', 'json', ...allowed].includes(key)) {
        throw new UsageError(`dead-letters ${action} does not take --${key}`);
      }
    }
  };
  switch (action) {
    case 'list': {
      only(['page-size', 'page-token', 'all']);
      if (id !== undefined) throw new UsageError(`unexpected argument "${id}"`);
      if (values.all && values['page-token'] !== undefined) {
        throw new UsageError('--all and --page-token do not go together');
      }
      const size = values['page-size'];
      if (size !== undefined && !/^\d+$/.test(size)) {
        throw new UsageError('--page-size must be a non-negative integer');
      }
      const letters: DeadLetter[] = [];
      let token = values['page-token'] ?? '';
      let next = '';
      do {
        const query = new URLSearchParams();
        if (size !== undefined) query.set('pageSize', size);
        if (token) query.set('pageToken', token);
        const q = query.toString();
        const page = (await io.request(
          'GET',
          `/v1/deadLetters${q ? `?${q}` : ''}`,
        )) as Partial<ListDeadLettersResponse>;
        letters.push(...(page.deadLetters ?? []));
        next = page.nextPageToken ?? '';
        token = next;
      } while (values.all && token);
      if (json)
        print(
          values.all ? { deadLetters: letters } : { deadLetters: letters, nextPageToken: next },
        );
      else io.stdout(`${formatLetters(letters, values.all ? '' : next)}\n`);
      return Exit.ok;
    }
    case 'get': {
      only([]);
      const letter = (await io.request('GET', `/v1/deadLetters/${needId()}`)) as DeadLetter;
      if (json) print(letter);
      else io.stdout(`${formatLetter(letter)}\n`);
      return Exit.ok;
    }
    case 'discard': {
      only([]);
      const name = `${DEAD_LETTERS_PREFIX}${needId()}`;
      await io.request('DELETE', `/v1/${name}`);
      if (json) print({});
      else io.stdout(`discarded ${name}\n`);
      return Exit.ok;
    }
    case 'replay': {
      only(['all']);
      if (!values.all) {
        const name = `${DEAD_LETTERS_PREFIX}${needId()}`;
        await io.request('POST', `/v1/${name}:replay`, {});
        if (json) print({});
        else io.stdout(`replayed ${name}\n`);
        return Exit.ok;
      }
      if (id !== undefined) throw new UsageError('replay takes an ID or --all, not both');
      return replayAll(io, json);
    }
    default:
      throw new UsageError(`unknown dead-letters command "${action}"`);
  }
}

async function replayAll(io: DeadLetterCommandIo, json: boolean): Promise<number> {
  const names: string[] = [];
  let token = '';
  do {
    const page = (await io.request(
      'GET',
      `/v1/deadLetters?pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
    )) as Partial<ListDeadLettersResponse>;
    names.push(...(page.deadLetters ?? []).map((l) => l.name));
    token = page.nextPageToken ?? '';
  } while (token);
  const replayed: string[] = [];
  const failed: { name: string; error: unknown }[] = [];
  for (const name of names) {
    try {
      await io.request('POST', `/v1/${name}:replay`, {});
      replayed.push(name);
      if (!json) io.stdout(`replayed ${name}\n`);
    } catch (err) {
      const error = err instanceof LroError ? err : new LroError(Code.UNKNOWN, String(err));
      // Replayed or discarded by someone else meanwhile: nothing left to do.
      if (error.code === Code.NOT_FOUND) continue;
      failed.push({ name, error: error.toJSON().error });
      io.stderr(`lro: replay of ${name} failed: ${error.status}: ${error.message}\n`);
    }
  }
  if (json) io.stdout(`${JSON.stringify({ replayed, failed }, null, 2)}\n`);
  else io.stdout(`${replayed.length} replayed, ${failed.length} failed\n`);
  return failed.length === 0 ? Exit.ok : Exit.apiError;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      audience: { type: 'string' },
      json: { type: 'boolean' },
      'page-size': { type: 'string' },
      'page-token': { type: 'string' },
      all: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
}

function idOf(given: string): string {
  const id = given.startsWith(DEAD_LETTERS_PREFIX)
    ? given.slice(DEAD_LETTERS_PREFIX.length)
    : given;
  if (!DeadLetterIdSchema.safeParse(id).success) {
    throw new UsageError(`"${given}" is not a dead-letter ID`);
  }
  return encodeURIComponent(id);
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export function formatLetters(letters: DeadLetter[], nextPageToken = ''): string {
  if (letters.length === 0) return 'no dead letters';
  const rows = letters.map((l) => [
    l.name.slice(DEAD_LETTERS_PREFIX.length),
    l.deadLetterTime,
    l.operation ?? '-',
    oneLine(l.reason, 80),
  ]);
  const header = ['ID', 'TIME', 'OPERATION', 'REASON'];
  const widths = header.map((h, i) =>
    Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  if (nextPageToken) out.push(`(more: --page-token ${nextPageToken})`);
  return out.join('\n');
}

export function formatLetter(letter: DeadLetter): string {
  const lines = [
    `${letter.name}`,
    `  time       ${letter.deadLetterTime}`,
    `  operation  ${letter.operation ?? '-'}`,
    `  reason     ${letter.reason}`,
  ];
  const attributes = Object.entries(letter.attributes);
  if (attributes.length > 0) {
    lines.push('  attributes');
    for (const [key, value] of attributes) lines.push(`    ${key}: ${value}`);
  }
  if (letter.event !== undefined) {
    lines.push('  event');
    for (const l of JSON.stringify(letter.event, null, 2).split('\n')) lines.push(`    ${l}`);
  } else {
    lines.push(`  data (base64)  ${letter.data}`);
  }
  return lines.join('\n');
}
