/**
 * The operations function under the functions framework, with its own table, notifications and
 * wake-up topics on the run's emulators, a store to play the worker's part, and small HTTP helpers.
 */

import http from 'node:http';
import { Messaging } from '../../shared/sdk/messaging.js';
import type { Operation } from '../../shared/sdk/model.js';
import {
  announce,
  type Notification,
  type NotificationType,
  parseNotification,
} from '../../shared/sdk/notifications.js';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';
import {
  createStore,
  deleteTable,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationStore } from '../../shared/service/store/store.js';
import { testEnv, uniqueSuffix } from './env.js';
import { type RunningFunction, startFunction } from './functions.js';

export interface OperationsStack {
  env: Record<string, string>;
  config: Config;
  fn: RunningFunction;
  url: string;
  store: OperationStore;
  messaging: Messaging;
  /** Announces a change (a notification, and a wake-up when it ends the operation), as the subscriber does after a write. */
  notify(type: NotificationType, operation: Operation): Promise<void>;
  /** Completes an operation in the store and announces it, as the subscriber does. */
  finish(name: string, outcome: Parameters<OperationStore['complete']>[1]): Promise<Operation>;
  /** A pull subscription on the notifications topic, collecting what arrives. */
  collectNotifications(): Promise<NotificationCollector>;
  /** The waits' listener subscriptions (on the wake-up topic). */
  waiterSubscriptions(): Promise<string[]>;
  /** The watches' listener subscriptions (on the notifications topic). */
  watchSubscriptions(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface NotificationCollector {
  received: Notification[];
  /** Resolves with the first notification (already received or later) matching `test`. */
  next(test: (n: Notification) => boolean): Promise<Notification>;
  close(): Promise<void>;
}

export async function startOperationsStack(
  overrides: Record<string, string> = {},
): Promise<OperationsStack> {
  const env = testEnv(overrides);
  const config = loadConfig(env);
  const messaging = new Messaging(config);
  await Promise.all([
    ensureTable(config),
    messaging.ensureTopic(config.topics.notifications),
    messaging.ensureTopic(config.topics.wakeups),
  ]);
  const fn = await startFunction('operations', env);
  const store = createStore(config);
  const subscriptions: string[] = [];
  const notify = async (type: NotificationType, operation: Operation) => {
    const topics = { notifications: config.topics.notifications, wakeups: config.topics.wakeups };
    await announce(messaging, topics, { type, operation });
  };
  return {
    env,
    config,
    fn,
    url: fn.url,
    store,
    messaging,
    notify,
    async finish(name, outcome) {
      const { operation: record } = await store.complete(name, outcome);
      await notify('error' in outcome ? 'failed' : 'succeeded', record);
      return record;
    },
    async collectNotifications() {
      const name = `collector-${uniqueSuffix()}`;
      subscriptions.push(name);
      await messaging.ensurePullSubscription(name, config.topics.notifications);
      const received: Notification[] = [];
      const waiting: { test: (n: Notification) => boolean; resolve: (n: Notification) => void }[] =
        [];
      const listener = messaging.listen(name, (message) => {
        message.ack();
        const notification = parseNotification(message);
        if (!notification) return;
        received.push(notification);
        for (const w of [...waiting]) {
          if (w.test(notification)) {
            waiting.splice(waiting.indexOf(w), 1);
            w.resolve(notification);
          }
        }
      });
      return {
        received,
        next: (test) => {
          const found = received.find(test);
          if (found) return Promise.resolve(found);
          return new Promise((resolve) => waiting.push({ test, resolve }));
        },
        close: () => listener.close(),
      };
    },
    async waiterSubscriptions() {
      const [subs] = await messaging.pubsub.topic(config.topics.wakeups).getSubscriptions();
      return subs.map((s) => s.name.split('/').pop() ?? '').filter((n) => n.includes('-waiter-'));
    },
    async watchSubscriptions() {
      const [subs] = await messaging.pubsub.topic(config.topics.notifications).getSubscriptions();
      return subs.map((s) => s.name.split('/').pop() ?? '').filter((n) => n.includes('-watch-'));
    },
    async stop() {
      await fn.stop();
      await store.close();
      for (const name of subscriptions) await messaging.deleteSubscription(name);
      await messaging.deleteTopic(config.topics.notifications);
      await messaging.deleteTopic(config.topics.wakeups);
      await messaging.close();
      await deleteTable(config);
    },
  };
}

export interface Reply<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

/** One HTTP request with a JSON body (a string is sent as is); the JSON reply. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const started = performance.now();
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text so that the assertion shows it
  }
  return {
    status: res.status,
    body: parsed as T,
    headers: res.headers,
    ms: performance.now() - started,
  };
}

/**
 * A POST whose body is sent only when `sendBody` is called. It asks `Expect: 100-continue`;
 * `received` resolves on the server's `100 Continue`, which Node's HTTP server sends in the same
 * turn as it emits the request: the server has the request, it is in flight. `reply` resolves
 * with the status and the JSON body (the text when it is not JSON).
 */
export function slowBodyPost(url: string, path: string, body: unknown) {
  const payload = JSON.stringify(body);
  let continued!: () => void;
  const received = new Promise<void>((r) => (continued = r));
  let req!: http.ClientRequest;
  const reply = new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    req = http.request(
      `${url}${path}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          expect: '100-continue',
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text so that the assertion shows it
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('continue', () => continued());
    req.on('error', reject);
    req.flushHeaders();
  });
  return { received, reply, sendBody: () => req.end(payload) };
}
