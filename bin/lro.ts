#!/usr/bin/env node
/**
 * `lro`: the command line of the operations API. The one place where the CLI reads the
 * environment (LRO_API_URL); everything else is in cli.ts.
 */
import { runCli } from './cli.js';

// google-auth-library probes for a metadata server and warns when there is none (any laptop).
const printWarning = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'MetadataLookupWarning')
    for (const listener of printWarning) listener(warning);
});

const controller = new AbortController();
let interrupted = false;
process.once('SIGINT', () => {
  // Leave the terminal on a fresh line and exit as interrupted programs do.
  interrupted = true;
  controller.abort();
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.exit(130);
});

const code = await runCli(
  process.argv.slice(2),
  { apiUrl: process.env.LRO_API_URL },
  {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdoutIsTty: process.stdout.isTTY === true,
    stderrIsTty: process.stderr.isTTY === true,
    ...(process.stdout.columns ? { columns: process.stdout.columns } : {}),
    signal: controller.signal,
  },
);
if (!interrupted) process.exitCode = code;
