/**
 * The `lro` commands that are not about one operation: `dead-letters` (bin/dead-letters.ts) and
 * `console` (bin/console-proxy.ts). They share the URL, token and error handling of cli.ts.
 */
import { parseArgs } from 'node:util';
import { Code, LroError } from '../shared/sdk/errors.js';
import {
  DEAD_LETTERS_USAGE,
  DeadLetterUsageError,
  runDeadLetters,
} from './commands/dead-letters.js';
import {
  type CliEnv,
  type CliIo,
  describeApiError,
  Exit,
  errorOfReply,
  googleIdTokenHeaders,
  isLocalUrl,
  resolveUrl,
} from './commands/operations.js';
import { startConsoleProxy } from './console-proxy.js';
import { RESPONSE_TIMEOUT_MS, withResponseTimeout } from './response-timeout.js';

export const CONSOLE_USAGE = `Usage: lro console [--url URL] [--port N] [--audience AUD]

Serves the API's web console on 127.0.0.1 through a local proxy that adds your Google ID token
(application default credentials) to every request; a local URL gets no token. Prints the
console's address and runs until interrupted (Ctrl-C). --port 0 (the default) picks a free port.
`;

export const EXTRA_COMMANDS = new Set(['dead-letters', 'console']);

/** Runs `lro dead-letters ...` or `lro console ...`; resolves with the exit code. */
export async function runExtraCommand(
  command: string,
  argv: string[],
  env: CliEnv,
  io: CliIo,
): Promise<number> {
  const json = argv.includes('--json');
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout(command === 'console' ? CONSOLE_USAGE : DEAD_LETTERS_USAGE);
    return Exit.ok;
  }
  try {
    const url = urlOption(argv);
    const baseUrl = resolveUrl(url ?? env.apiUrl);
    const audience = optionValue(argv, '--audience') ?? baseUrl;
    const fetchFn = withResponseTimeout(
      io.fetch ?? globalThis.fetch,
      io.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS,
    );
    let headers: () => Promise<Record<string, string>> = async () => ({});
    if (!isLocalUrl(baseUrl)) {
      try {
        headers = await (io.authHeaders ?? googleIdTokenHeaders)(audience);
      } catch (err) {
        throw new LroError(
          Code.UNAUTHENTICATED,
          `no Google credentials for an ID token (run "gcloud auth application-default login"): ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    if (command === 'console') return await runConsole(argv, baseUrl, headers, io);
    return await runDeadLetters(argv, {
      stdout: io.stdout,
      stderr: io.stderr,
      request: async (method, path, body) => {
        const init: RequestInit = {
          method,
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(await headers()),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          ...(io.signal ? { signal: io.signal } : {}),
        };
        let res: Response;
        try {
          res = await fetchFn(baseUrl + path, init);
        } catch (err) {
          throw new LroError(
            Code.UNAVAILABLE,
            `${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        const text = await res.text();
        if (!res.ok) throw errorOfReply(res.status, text);
        return text === '' ? {} : (JSON.parse(text) as unknown);
      },
    });
  } catch (err) {
    if (err instanceof DeadLetterUsageError || err instanceof ConsoleUsageError) {
      io.stderr(`lro: ${err.message}\nRun "lro ${command} --help" for usage.\n`);
      return Exit.usage;
    }
    if (err instanceof LroError && err.name === 'LroError') {
      if (json) io.stdout(`${JSON.stringify(err.toJSON(), null, 2)}\n`);
      io.stderr(`lro: ${describeApiError(err)}\n`);
      return Exit.apiError;
    }
    if (err instanceof Error && err.name === 'UsageError') {
      io.stderr(`lro: ${err.message}\nRun "lro ${command} --help" for usage.\n`);
      return Exit.usage;
    }
    const error = new LroError(Code.UNKNOWN, err instanceof Error ? err.message : String(err));
    io.stderr(`lro: ${describeApiError(error)}\n`);
    return Exit.apiError;
  }
}

class ConsoleUsageError extends Error {
  override readonly name = 'UsageError';
}

function urlOption(argv: string[]): string | undefined {
  return optionValue(argv, '--url');
}

function optionValue(argv: string[], option: string): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === option) return argv[i + 1];
    if (arg.startsWith(`${option}=`)) return arg.slice(option.length + 1);
  }
  return undefined;
}

async function runConsole(
  argv: string[],
  baseUrl: string,
  headers: () => Promise<Record<string, string>>,
  io: CliIo,
): Promise<number> {
  let values: { port?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        audience: { type: 'string' },
        port: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    throw new ConsoleUsageError(err instanceof Error ? (err.message.split('\n')[0] ?? '') : '');
  }
  if (positionals.length > 0)
    throw new ConsoleUsageError(`unexpected argument "${positionals[0]}"`);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!/^\d+$/.test(values.port ?? '0') || port > 65535) {
    throw new ConsoleUsageError('--port must be a port number (0 picks a free one)');
  }
  const proxy = await startConsoleProxy({ target: baseUrl, headers, port });
  io.stdout(`console: ${proxy.consoleUrl}\n`);
  io.stdout(
    `(proxying ${baseUrl}${isLocalUrl(baseUrl) ? '' : ' with your ID token'}; Ctrl-C stops)\n`,
  );
  await new Promise<void>((resolve) => {
    if (!io.signal) return; // runs until the process ends
    if (io.signal.aborted) resolve();
    io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await proxy.close();
  return Exit.ok;
}
