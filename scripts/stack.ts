/**
 * The whole system on one machine: the emulators (started, or reused when the emulator
 * variables are set), the table, topics and subscriptions (the events topic pushes to the
 * subscriber exactly as in the cloud), the API and subscriber functions under the functions
 * framework, and a sweep every 2 seconds in this process (shared/service/sweeper/sweeper.ts, the logic of the
 * `sweeper` function that Cloud Scheduler calls every minute in the cloud).
 * `npm start`, the benchmarks and the end-to-end tests all use it.
 */

import { type RunningEmulators, startEmulators } from '../shared/local/emulators.js';
import { type ProvisionedStack, provisionStack } from '../shared/local/provision.js';
import { defaults } from '../shared/sdk/defaults.js';
import { createLogger } from '../shared/sdk/log.js';
import { Messaging } from '../shared/sdk/messaging.js';
import { type Config, loadConfig } from '../shared/service/runtime/config.js';
import { openStores } from '../shared/service/store/bigtable/stores.js';
import { sweep } from '../shared/service/sweeper/sweeper.js';
import { type RunningFunction, startFunction } from './run-function.js';

export interface StackOptions {
  /** The environment (defaults: the documented local names). */
  env?: Record<string, string | undefined>;
  /** Port of the operations API; PORT or 8080 when absent. */
  apiPort?: number;
  /** Port of the subscriber function; the API port + 1 when absent. */
  subscriberPort?: number;
  /** Ports for emulators this stack starts (free ports when absent; unused when reused). */
  emulatorPorts?: { bigtable?: number; pubsub?: number };
  /** How often the sweeper runs (default 2 s). */
  sweepIntervalMs?: number;
  /** Delivery attempts before an event is dead-lettered. */
  maxDeliveryAttempts?: number;
  onOutput?: (
    source: 'api' | 'subscriber' | 'sweeper' | 'bigtable' | 'pubsub',
    chunk: string,
  ) => void;
  /** Called when a process of the stack is spawned (emulators) or listening (functions). */
  onProcess?: (
    role: 'bigtable' | 'pubsub' | 'api' | 'subscriber',
    pid: number,
    address: string,
  ) => void;
}

export interface Stack {
  config: Config;
  /** Names of the subscriptions made for this stack, and the push endpoint. */
  provisioned: ProvisionedStack;
  /** The environment the functions run with (emulator hosts included). */
  env: Record<string, string>;
  emulators: RunningEmulators;
  api: RunningFunction;
  subscriber: RunningFunction;
  /** Stops what this stack started (functions, then emulators it started), nothing else. */
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const baseEnv = options.env ?? {};
  // Validate first, so that a bad variable is reported before anything starts.
  const preliminary = loadConfig(baseEnv);
  const apiPort = options.apiPort ?? preliminary.port;
  const subscriberPort = options.subscriberPort ?? apiPort + 1;
  const emulators = await startEmulators({
    env: baseEnv,
    ...(options.emulatorPorts?.bigtable ? { bigtablePort: options.emulatorPorts.bigtable } : {}),
    ...(options.emulatorPorts?.pubsub ? { pubsubPort: options.emulatorPorts.pubsub } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    ...(options.onProcess ? { onSpawn: options.onProcess } : {}),
  });
  const started: RunningFunction[] = [];
  try {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(baseEnv)) {
      if (value !== undefined) env[key] = value;
    }
    env.BIGTABLE_EMULATOR_HOST = emulators.bigtable;
    env.PUBSUB_EMULATOR_HOST = emulators.pubsub;
    const config = loadConfig({ ...env, PORT: String(apiPort) });
    const onOutput = options.onOutput;
    const run = (target: 'operations' | 'subscriber', port: number) =>
      startFunction(target, env, port, {
        ...(onOutput
          ? {
              onOutput: (chunk: string) =>
                onOutput(target === 'operations' ? 'api' : target, chunk),
            }
          : {}),
      });
    // Both functions start at once (each takes about a second); the API reads the table and
    // topics only when requests come, after provisioning.
    const results = await Promise.allSettled([
      run('subscriber', subscriberPort),
      run('operations', apiPort),
    ]);
    for (const result of results) if (result.status === 'fulfilled') started.push(result.value);
    for (const fn of started) {
      const role = fn.target === 'operations' ? 'api' : 'subscriber';
      if (fn.process.pid !== undefined) options.onProcess?.(role, fn.process.pid, fn.url);
    }
    for (const result of results) if (result.status === 'rejected') throw result.reason;
    const [subscriber, api] = started as [RunningFunction, RunningFunction];
    const provisioned = await provisionStack(config, {
      subscriberUrl: `${subscriber.url}/`,
      ...(options.maxDeliveryAttempts ? { maxDeliveryAttempts: options.maxDeliveryAttempts } : {}),
    });
    const scheduler = scheduleSweeps(
      config,
      options.sweepIntervalMs ?? defaults.sweepLocalIntervalMs,
      (chunk) => onOutput?.('sweeper', chunk),
    );
    let stopping: Promise<void> | undefined;
    return {
      config,
      provisioned,
      env: { ...env, PORT: String(apiPort) },
      emulators,
      api,
      subscriber,
      stop: () => {
        stopping ??= (async () => {
          await scheduler.stop();
          await Promise.all(started.map((f) => f.stop()));
          await emulators.stop();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await Promise.all(started.map((f) => f.stop()));
    await emulators.stop();
    throw err;
  }
}

/**
 * Runs a sweep every `intervalMs`, one at a time, with its own store and publisher; its log lines
 * go to `write` (the stack's output), tagged as the sweeper's. A failed sweep is logged and the
 * next one runs as usual.
 */
function scheduleSweeps(
  config: Config,
  intervalMs: number,
  write: (chunk: string) => void,
): { stop(): Promise<void> } {
  const stores = openStores(config);
  const { operations: store, deadLetters } = stores;
  const messaging = new Messaging(config);
  const log = createLogger({}, (line) => write(`${line}\n`));
  const deps = {
    store,
    deadLetters,
    messaging,
    topics: {
      notifications: config.topics.notifications,
      wakeups: config.topics.wakeups,
      events: config.topics.events,
    },
    log,
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const tick = () => {
    current = sweep(deps)
      .then(
        (report) => {
          if (report.ended > 0 || report.failed > 0 || report.deadLettersReplayed > 0) {
            log.info('sweep done', { ...report });
          }
        },
        (err: unknown) => log.warn('sweep failed; the next one retries', { error: err }),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await current;
      await Promise.allSettled([stores.close(), messaging.close()]);
    },
  };
}
