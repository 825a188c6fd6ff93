/**
 * The whole system on one machine: the emulators (started, or reused when the emulator
 * variables are set), the table, topics and subscriptions (the events topic pushes to the
 * subscriber exactly as in the cloud), the three functions under the functions framework, and a
 * timer that calls the sweeper every 2 seconds, as Cloud Scheduler does every minute.
 * `npm start`, the benchmarks and the end-to-end tests all use it.
 */
import { type Config, loadConfig } from '../shared/config.js';
import { defaults } from '../shared/defaults.js';
import { freePort, type RunningEmulators, startEmulators } from '../shared/emulators.js';
import { type ProvisionedStack, provisionStack } from '../shared/provision.js';
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
  /** Port of the sweeper function; a free port when absent. */
  sweeperPort?: number;
  /** How often the sweeper is called (default 2 s). */
  sweepIntervalMs?: number;
  /** Delivery attempts before an event is dead-lettered. */
  maxDeliveryAttempts?: number;
  onOutput?: (
    source: 'api' | 'subscriber' | 'sweeper' | 'bigtable' | 'pubsub',
    chunk: string,
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
  /** The sweeper function, called every `sweepIntervalMs` by the stack's timer. */
  sweeper: RunningFunction;
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
    const run = (target: 'operations' | 'subscriber' | 'sweeper', port: number) =>
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
    const sweeperPort = options.sweeperPort ?? (await freePort());
    const results = await Promise.allSettled([
      run('subscriber', subscriberPort),
      run('operations', apiPort),
      run('sweeper', sweeperPort),
    ]);
    for (const result of results) if (result.status === 'fulfilled') started.push(result.value);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
    const [subscriber, api, sweeper] = started as [
      RunningFunction,
      RunningFunction,
      RunningFunction,
    ];
    const provisioned = await provisionStack(config, {
      subscriberUrl: `${subscriber.url}/`,
      ...(options.maxDeliveryAttempts ? { maxDeliveryAttempts: options.maxDeliveryAttempts } : {}),
    });
    const scheduler = scheduleSweeps(
      sweeper.url,
      options.sweepIntervalMs ?? defaults.sweepLocalIntervalMs,
    );
    let stopping: Promise<void> | undefined;
    return {
      config,
      provisioned,
      env: { ...env, PORT: String(apiPort) },
      emulators,
      api,
      subscriber,
      sweeper,
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
 * Calls the sweeper every `intervalMs`, one call at a time, as Cloud Scheduler calls the deployed
 * one (an HTTP POST). A failed call is retried at the next tick; the sweeper's own log says why.
 */
function scheduleSweeps(url: string, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const tick = () => {
    current = fetch(url, { method: 'POST', signal: AbortSignal.timeout(60_000) })
      .then((res) => res.arrayBuffer())
      .then(
        () => undefined,
        () => undefined,
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
    },
  };
}
