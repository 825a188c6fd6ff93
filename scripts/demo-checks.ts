/**
 * What `npm run demo` checks before it creates anything, so that a terminal without the stack's
 * variables gets one line saying what to set within seconds, instead of minutes of client
 * retries and operations left running: the Pub/Sub emulator answers, it has the events topic
 * (it is the stack's emulator), and the operations API answers.
 */
import { withResponseTimeout } from '../bin/response-timeout.js';
import { isListening } from '../shared/local/emulators.js';
import { OperationsClient } from '../shared/sdk/client.js';
import { LroError } from '../shared/sdk/errors.js';
import { Messaging } from '../shared/sdk/messaging.js';
import type { Config } from '../shared/service/runtime/config.js';

/** How long each check may take. */
export const DEMO_CHECK_TIMEOUT_MS = 5_000;

export class DemoCheckError extends Error {
  override readonly name = 'DemoCheckError';
}

/** Resolves when the demo can run; otherwise rejects with a DemoCheckError of one line. */
export async function checkDemoCanRun(options: {
  apiUrl: string;
  config: Pick<Config, 'projectId' | 'pubsubEmulatorHost' | 'topics'>;
  /** Whether PUBSUB_EMULATOR_HOST was set (rather than npm start's default taken). */
  pubsubHostFromEnv: boolean;
  timeoutMs?: number;
}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEMO_CHECK_TIMEOUT_MS;
  const { config } = options;
  const host = config.pubsubEmulatorHost;
  const exportHint =
    'run "npm start" first, or in this terminal run the "export BIGTABLE_EMULATOR_HOST=... PUBSUB_EMULATOR_HOST=..." line that npm start printed';
  if (host) {
    const named = options.pubsubHostFromEnv
      ? `PUBSUB_EMULATOR_HOST=${host}`
      : `PUBSUB_EMULATOR_HOST is not set and ${host} (where npm start puts the emulator)`;
    if (!(await isListening(host, timeoutMs))) {
      throw new DemoCheckError(`${named} does not answer: ${exportHint}`);
    }
    const messaging = new Messaging(config);
    try {
      if (!(await messaging.topicExists(config.topics.events, timeoutMs))) {
        throw new DemoCheckError(
          `the Pub/Sub emulator at ${host} has no topic ${config.topics.events}, so it is not the one npm start provisioned: ${exportHint}`,
        );
      }
    } catch (err) {
      if (err instanceof DemoCheckError) throw err;
      throw new DemoCheckError(
        `the Pub/Sub emulator at ${host} (PUBSUB_EMULATOR_HOST) did not answer: ${firstLine(err)}`,
      );
    } finally {
      await messaging.close();
    }
  }
  const client = new OperationsClient({
    baseUrl: options.apiUrl,
    fetch: withResponseTimeout(globalThis.fetch, timeoutMs),
  });
  try {
    await client.list({ pageSize: 1 });
  } catch (err) {
    const unreached = !(err instanceof LroError) || / failed: /.test(err.message);
    throw new DemoCheckError(
      unreached
        ? `no operations API answers at ${options.apiUrl} (${firstLine(err)}): start it with "npm start", or pass --url (or set LRO_API_URL) to where it runs`
        : `the operations API at ${options.apiUrl} answered ${err.status}: ${firstLine(err)}`,
    );
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
