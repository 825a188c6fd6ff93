/**
 * The `lro` command line: its usage and its command groups. `bin/lro.ts` is the executable
 * entry; this module takes its inputs (arguments, the API URL from the environment, output
 * streams) as parameters so that it can be driven from tests.
 *
 * Each group is a module of bin/commands/: the operation commands (`lro get`, `lro wait` ...),
 * `lro dead-letters ...` and `lro console`. How they reach the API (URL, ID token, time limits,
 * errors, exit codes) is bin/connection.ts.
 */
import { Code, LroError } from '../shared/sdk/errors.js';
import { CONSOLE_USAGE, runConsole } from './commands/console.js';
import { DEAD_LETTERS_USAGE, runDeadLetters } from './commands/dead-letters.js';
import { runOperationCommand } from './commands/operations.js';
import {
  type CliEnv,
  type CliIo,
  type Connection,
  connect,
  DEFAULT_URL,
  describeApiError,
  Exit,
  messageOf,
  requestJson,
  resolveUrl,
  UsageError,
} from './connection.js';

export { type CliEnv, type CliIo, Exit } from './connection.js';

export const USAGE = `Usage: lro <command> [arguments] [options]

Commands:
  create [--id ID] [--parent NAME] [--metadata JSON] [--request-id KEY]
         [--deadline TIME|DURATION] [--heartbeat-timeout DURATION]
                          create an operation (deadline: RFC 3339, or a duration from now
                          such as 10m; it ends DEADLINE_EXCEEDED when a limit passes)
  get NAME                show an operation and its times
  list [--filter F] [--name PREFIX] [--order-by O] [--page-size N] [--page-token T] [--all]
                          list operations, newest first (filter e.g. "done = false";
                          --name demo- lists the IDs starting with demo-; --order-by
                          "create_time asc" for oldest first, "name" by ID)
  children NAME [--order-by O] [--page-size N] [--page-token T] [--all]
                          list an operation's immediate children, newest first
  history NAME            the events the subscriber handled for it, newest first
  tree NAME [--max-depth N]
                          show an operation and its descendants
  wait NAME [--timeout D] wait until done, drawing a progress bar
  watch NAME [--timeout D]
                          follow every change (server-sent events) until done
  cancel NAME             request cancellation
  delete NAME             delete an operation
  dead-letters [list|get ID|replay ID|replay --all|discard ID]
                          events that could not be applied ("lro dead-letters --help")
  console [--port N]      the web console through a local proxy that adds your ID token

NAME is an operation ID or "operations/ID". D is a duration: 30s, 500ms, 2m, 1h (or seconds).

Options:
  --url URL        the API (default: LRO_API_URL, else ${DEFAULT_URL}); a URL that is not
                   local gets a Google ID token (application default credentials)
  --audience AUD   the ID token's audience (default: the URL)
  --json           machine-readable output (watch: one Operation per line)
  -h, --help       this text

Progress: wait and watch read the metadata's "percent" (0-100), else "progressPercent" (0-100),
else "progress" (a fraction, 0-1), and show "message", "stage" or "state" beside the bar.

Exit codes: 0 ok (wait/watch: succeeded), 1 operation failed or cancelled, 2 usage error,
3 timed out before done, 4 API error or API unreachable.
`;

/** A command with subcommands of its own, `lro NAME ...`, with its own `--help`. */
interface CommandGroup {
  usage: string;
  run(argv: string[], connection: Connection, io: CliIo): Promise<number>;
}

const GROUPS: Record<string, CommandGroup> = {
  'dead-letters': {
    usage: DEAD_LETTERS_USAGE,
    run: (argv, connection, io) =>
      runDeadLetters(argv, {
        stdout: io.stdout,
        stderr: io.stderr,
        request: (method, path, body) => requestJson(connection, method, path, body, io.signal),
      }),
  },
  console: { usage: CONSOLE_USAGE, run: runConsole },
};

/** Runs one command line; resolves with the exit code. */
export async function runCli(argv: string[], env: CliEnv, io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first !== undefined && Object.hasOwn(GROUPS, first)) {
    return runGroup(first, GROUPS[first] as CommandGroup, rest, env, io);
  }
  return runOperationCommand(argv, env, io, USAGE);
}

async function runGroup(
  command: string,
  group: CommandGroup,
  argv: string[],
  env: CliEnv,
  io: CliIo,
): Promise<number> {
  const json = argv.includes('--json');
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout(group.usage);
    return Exit.ok;
  }
  try {
    const baseUrl = resolveUrl(optionValue(argv, '--url') ?? env.apiUrl);
    const connection = await connect(baseUrl, optionValue(argv, '--audience'), io);
    return await group.run(argv, connection, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`lro: ${err.message}\nRun "lro ${command} --help" for usage.\n`);
      return Exit.usage;
    }
    if (err instanceof LroError && err.name === 'LroError') {
      if (json) io.stdout(`${JSON.stringify(err.toJSON(), null, 2)}\n`);
      io.stderr(`lro: ${describeApiError(err)}\n`);
      return Exit.apiError;
    }
    const error = new LroError(Code.UNKNOWN, messageOf(err));
    io.stderr(`lro: ${describeApiError(error)}\n`);
    return Exit.apiError;
  }
}

/** `--option VALUE` or `--option=VALUE` anywhere in the arguments. */
function optionValue(argv: string[], option: string): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === option) return argv[i + 1];
    if (arg.startsWith(`${option}=`)) return arg.slice(option.length + 1);
  }
  return undefined;
}
