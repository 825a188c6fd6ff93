/**
 * The whole system for fault tests: the operations API and the subscriber under the functions
 * framework on fixed ports, the push subscription to the subscriber (retry and dead-letter
 * policies chosen by the test), and helpers to break and restore its parts: kill and restart the
 * subscriber on the same port (the push subscription keeps pointing at it), and a private
 * Bigtable emulator that a test may freeze without touching the run's shared one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import {
  bigtableEmulatorPath,
  findSdkRoot,
  freePort,
  isListening,
} from '../../shared/local/emulators.js';
import {
  type ProvisionedStack,
  provisionStack,
  teardownStack,
} from '../../shared/local/provision.js';
import type { WorkerEventInput } from '../../shared/sdk/events.js';
import {
  Messaging,
  type PublishOptions,
  type ReceivedMessage,
} from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import { createStore } from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv } from '../support/env.js';
import { until } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

export { until };

export interface FaultStackOptions {
  /** Environment overrides (a private Bigtable emulator, wait limits, ...). */
  env?: Record<string, string>;
  maxDeliveryAttempts?: number;
  minimumBackoffSeconds?: number;
  maximumBackoffSeconds?: number;
  messageOrdering?: boolean;
  /** How long a push may stay unanswered before Pub/Sub delivers it again. */
  ackDeadlineSeconds?: number;
  /**
   * Push through a front end that holds requests while the subscriber is down and sends them
   * again once it is back (see `startFrontEnd`).
   */
  frontEnd?: boolean;
}

export interface FaultStack {
  env: Record<string, string>;
  config: Config;
  /** A store and a Messaging of the test process itself (the worker's and the checker's). */
  store: OperationStore;
  messaging: Messaging;
  provisioned: ProvisionedStack;
  api: RunningFunction;
  subscriber: RunningFunction;
  /** SIGKILLs the subscriber. */
  killSubscriber(): Promise<void>;
  /** Starts the subscriber again on its port; `subscriber` then names the new process. */
  restartSubscriber(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const env = testEnv(options.env ?? {});
  const config = loadConfig(env);
  const messaging = new Messaging(config);
  const subscriberPort = await freePort();
  let subscriber = await startFunction('subscriber', env, subscriberPort);
  let api: RunningFunction | undefined;
  const frontEnd = options.frontEnd ? await startFrontEnd(subscriberPort) : undefined;
  try {
    const provisioned = await provisionStack(config, {
      subscriberUrl: frontEnd?.url ?? subscriber.url,
      messaging,
      maxDeliveryAttempts: options.maxDeliveryAttempts ?? 100,
      minimumBackoffSeconds: options.minimumBackoffSeconds ?? 1,
      maximumBackoffSeconds: options.maximumBackoffSeconds ?? 2,
      messageOrdering: options.messageOrdering ?? false,
      ackDeadlineSeconds: options.ackDeadlineSeconds ?? 10,
    });
    api = await startFunction('operations', env);
    const store = createStore(config);
    const stack: FaultStack = {
      env,
      config,
      store,
      messaging,
      provisioned,
      api,
      subscriber,
      killSubscriber: () => stack.subscriber.kill(),
      async restartSubscriber() {
        await until(
          async () => !(await isListening(`127.0.0.1:${subscriberPort}`, 300)),
          10_000,
          'subscriber port released',
        );
        subscriber = await startFunction('subscriber', env, subscriberPort);
        stack.subscriber = subscriber;
      },
      async stop() {
        await Promise.allSettled([stack.api.stop(), stack.subscriber.stop(), frontEnd?.stop()]);
        await teardownStack(config, { messaging }).catch(() => undefined);
        await store.close().catch(() => undefined);
        await messaging.close().catch(() => undefined);
      },
    };
    return stack;
  } catch (err) {
    await Promise.allSettled([subscriber.stop(), api?.stop(), frontEnd?.stop()]);
    await messaging.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The part of the platform in front of a function: in the cloud, Pub/Sub pushes to the
 * function's front end, which answers for a crashed instance while a new one starts; it never
 * refuses the connection. This front end forwards each request to the subscriber's port and,
 * when the connection fails (the process is dead, or was killed with the request in flight),
 * holds the request and sends it again until the subscriber answers, for up to `holdMs`. A
 * request that was in flight when the process died so reaches the restarted process again, as a
 * redelivery would. (The Pub/Sub emulator itself loses some deliveries whose connection failed.)
 */
export async function startFrontEnd(
  targetPort: number,
  holdMs = 60_000,
): Promise<{ url: string; stop(): Promise<void> }> {
  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        const upstream = request(
          {
            host: '127.0.0.1',
            port: targetPort,
            method: req.method,
            path: req.url,
            headers: {
              ...req.headers,
              host: `127.0.0.1:${targetPort}`,
              connection: 'close',
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 502,
                headers: res.headers,
                body: Buffer.concat(chunks),
              }),
            );
            res.on('error', reject);
          },
        );
        upstream.on('error', reject);
        upstream.end(body);
      },
    );
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const deadline = Date.now() + holdMs;
      for (;;) {
        try {
          const reply = await forward(req, body);
          res.writeHead(reply.status, {
            'content-type': String(reply.headers['content-type'] ?? 'text/plain'),
          });
          res.end(reply.body);
          return;
        } catch {
          if (Date.now() > deadline) {
            res.writeHead(503).end();
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A Bigtable emulator of this test alone, in its own process group, so that it can be frozen
 * (SIGSTOP) and resumed (SIGCONT) without touching the emulators other tests use.
 */
export interface PrivateBigtable {
  host: string;
  pid: number;
  freeze(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startPrivateBigtable(): Promise<PrivateBigtable> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    bigtableEmulatorPath(findSdkRoot()),
    ['-host', '127.0.0.1', '-port', String(port)],
    { detached: true, stdio: 'ignore' },
  );
  child.on('error', () => {
    // Seen through exitCode below.
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the Bigtable emulator did not start');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-pid, name);
    } catch {
      // the group is gone already
    }
  };
  const stop = async () => {
    signal('SIGCONT');
    signal('SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
  };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error('the Bigtable emulator exited at start');
        return isListening(host, 300);
      },
      30_000,
      'private Bigtable emulator',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host,
    pid,
    freeze: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    stop,
  };
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * One HTTP request with node:http (any method, any bytes, any header), bounded in time: a reply
 * that takes longer than `timeoutMs` rejects.
 */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<HttpReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...(options.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 20_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => {
      req.destroy(
        new Error(`${method} ${path} took longer than ${options.timeoutMs ?? 20_000} ms`),
      );
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A JSON request to the API; the reply parsed. */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<HttpReply> {
  return rawRequest(base, method, path, {
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    timeoutMs,
  });
}

/** Creates an operation through the API. */
export async function createOperation(base: string, metadata?: unknown): Promise<Operation> {
  const reply = await api(base, 'POST', '/v1/operations', metadata ? { metadata } : {});
  if (reply.status !== 200) throw new Error(`create failed: ${reply.status} ${reply.text}`);
  return reply.json as Operation;
}

export const progress = (step: number) => ({ '@type': 'type.googleapis.com/test.Progress', step });
export const result = (value: string) => ({ '@type': 'type.googleapis.com/test.Result', value });

/** What a worker of the fault tests ends an operation with, decided by its index. */
export function expectedEnd(index: number, name: string, finalStep: number): Operation {
  const metadata = progress(finalStep);
  if (index % 3 === 2) {
    return {
      name,
      done: true,
      metadata,
      error: { code: 9 + (index % 5), message: `worker ${index} failed`, details: [] },
    };
  }
  return { name, done: true, metadata, response: result(`value of ${index}`) };
}

/** Whether an operation is in exactly the expected end state (status details default to []). */
export function matchesEnd(actual: Operation, expected: Operation): boolean {
  const norm = (op: Operation): Operation =>
    op.error ? { ...op, error: { ...op.error, details: op.error.details ?? [] } } : op;
  return isDeepStrictEqual(norm(actual), norm(expected));
}

/** A raw Pub/Sub push body, as a push subscription posts it. */
export { pushBody } from '../support/pipeline.js';

/** A well-formed worker event with a fresh ID. */
export function workerEvent(
  operation: string,
  type: WorkerEventInput['type'],
  fields: Record<string, unknown> = {},
): WorkerEventInput {
  return {
    operation,
    type,
    eventId: randomUUID(),
    emitTime: new Date().toISOString(),
    ...fields,
  } as WorkerEventInput;
}

/**
 * A Messaging that publishes without ordering keys. The Pub/Sub emulator keeps holding back the
 * later messages of an ordering key for ever once a push of an earlier one failed (even on a
 * subscription without message ordering), which real Pub/Sub does not; the fault tests that
 * make pushes fail publish through this so that they test the system, not that emulator defect.
 */
export class UnorderedMessaging extends Messaging {
  override publish(topicName: string, data: unknown, options: PublishOptions = {}) {
    const { orderingKey: _dropped, ...rest } = options;
    return super.publish(topicName, data, rest);
  }
}

/** Collects every message of a pull subscription until closed. */
export function collect(
  messaging: Messaging,
  subscription: string,
): { received: ReceivedMessage[]; close(): Promise<void> } {
  const received: ReceivedMessage[] = [];
  const listener = messaging.listen(subscription, (message) => {
    message.ack();
    received.push(message);
  });
  return { received, close: () => listener.close() };
}
