/**
 * `lro console`: the API's web console on 127.0.0.1, through the proxy of ../console-proxy.ts
 * that adds the person's ID token to every request.
 */
import { parseArgs } from 'node:util';
import { type CliIo, type Connection, Exit, isLocalUrl, UsageError } from '../connection.js';
import { startConsoleProxy } from '../console-proxy.js';

export const CONSOLE_USAGE = `Usage: lro console [--url URL] [--port N] [--audience AUD]

Serves the API's web console on 127.0.0.1 through a local proxy that adds your Google ID token
(application default credentials) to every request; a local URL gets no token. Prints the
console's address and runs until interrupted (Ctrl-C). --port 0 (the default) picks a free port.
`;

/** Runs `lro console ...` until `io.signal` aborts (or the process ends); resolves with 0. */
export async function runConsole(
  argv: string[],
  connection: Connection,
  io: CliIo,
): Promise<number> {
  const { baseUrl, headers } = connection;
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
    throw new UsageError(err instanceof Error ? (err.message.split('\n')[0] ?? '') : '');
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!/^\d+$/.test(values.port ?? '0') || port > 65535) {
    throw new UsageError('--port must be a port number (0 picks a free one)');
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
