/**
 * Client SDK for the operations API: a typed `OperationsClient` over fetch, and
 * `waitForOperation` / `waitForOperations`, which long-poll the server's wait until done or
 * their own deadline.
 *
 * Parent propagation (the Go reference's SetParentInOutgoingMetadata and
 * ForwardIncomingParentMetadata): requests carry `x-lro-parent` when a parent is set, by
 * `client.withParent(name)` or by `runWithParent(name, fn)` for everything `fn` calls, so that
 * operations created while handling one become its children. `parentFromHeaders(req.headers)`
 * reads the header that an incoming request carried, to forward it.
 *
 * Each request goes through the request core (request.ts: URL, headers, JSON, Google errors as
 * LroError), which the web console shares; the waits' long-poll loop is in wait-loop.ts.
 *
 * This module is the entry point of the `@cloud-lro/client` package (packages/client): it and
 * what it imports must not depend on any package (no zod, no Google Cloud client).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { cancelRequestedOf } from './cancel-requested.js';
import type {
  Any,
  BatchWaitResponse,
  GetParentResponse,
  Operation,
  OperationNode,
} from './operation.js';
import type { OperationHistory, OperationTimes, OrderByValue } from './operator-views.js';
import { operationName, PARENT_HEADER, querySuffix, type Reply, sendRequest } from './request.js';
import { type WaitForOperationOptions, waitLoop } from './wait-loop.js';

export { PARENT_HEADER };

export interface OperationsClientOptions {
  /** The API's base URL, e.g. `https://region-project.cloudfunctions.net/operations`. */
  baseUrl: string;
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Headers computed per request, e.g. `{authorization: \`Bearer ${idToken}\`}`. */
  getHeaders?: () => Record<string, string> | Promise<Record<string, string>>;
  /** Parent operation of the operations this client creates. */
  parent?: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface CreateOptions extends CallOptions {
  operationId?: string;
  parent?: string;
  metadata?: Any;
  requestId?: string;
  /** When the operation must be done: a Date or an RFC 3339 timestamp. */
  deadline?: Date | string;
  /** Longest silence (no heartbeat or progress) allowed, a Duration such as "60s". */
  heartbeatTimeout?: string;
}

export interface ListOptions extends CallOptions {
  filter?: string;
  pageSize?: number;
  pageToken?: string;
  /** AIP-132: newest first (`create_time desc`) or oldest first; by name when absent. */
  orderBy?: OrderByValue;
  /** `FULL` adds `times` to the page (AIP-157); `BASIC` (default) does not. */
  view?: 'BASIC' | 'FULL';
}

export interface PageOptions extends CallOptions {
  pageSize?: number;
  pageToken?: string;
  orderBy?: OrderByValue;
  view?: 'BASIC' | 'FULL';
}

export interface OperationsPage {
  operations: Operation[];
  nextPageToken: string;
  /** With `view: 'FULL'`: the times of each operation, in the order of `operations`. */
  times?: OperationTimes[];
}

const parentContext = new AsyncLocalStorage<string>();

/** Runs `fn` with `name` as the parent of operations created through any client inside it. */
export function runWithParent<T>(name: string, fn: () => T): T {
  return parentContext.run(name, fn);
}

/** The parent set by `runWithParent`, if any. */
export function currentParent(): string | undefined {
  return parentContext.getStore();
}

/** The `x-lro-parent` of an incoming request's headers, to forward it. */
export function parentFromHeaders(
  headers: Record<string, string | string[] | undefined> | Headers,
): string | undefined {
  const value = headers instanceof Headers ? headers.get(PARENT_HEADER) : headers[PARENT_HEADER];
  const first = Array.isArray(value) ? value[0] : value;
  return first ? first : undefined;
}

function durationOf(ms: number): string {
  return `${Math.max(0, ms) / 1000}s`;
}

export class OperationsClient {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: OperationsClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  /** A client whose creations become children of `parent`. */
  withParent(parent: string): OperationsClient {
    return new OperationsClient({ ...this.options, parent: operationName(parent) });
  }

  create(options: CreateOptions = {}): Promise<Operation> {
    const body: Record<string, unknown> = {};
    if (options.operationId !== undefined) body.operationId = options.operationId;
    if (options.parent !== undefined) body.parent = operationName(options.parent);
    if (options.metadata !== undefined) body.metadata = options.metadata;
    if (options.requestId !== undefined) body.requestId = options.requestId;
    if (options.deadline !== undefined) {
      body.deadline =
        options.deadline instanceof Date ? options.deadline.toISOString() : options.deadline;
    }
    if (options.heartbeatTimeout !== undefined) body.heartbeatTimeout = options.heartbeatTimeout;
    return this.call('POST', '/v1/operations', body, options.signal);
  }

  get(name: string, options: CallOptions = {}): Promise<Operation> {
    return this.call('GET', `/v1/${operationName(name)}`, undefined, options.signal);
  }

  /**
   * The operation and, when cancellation was requested, when (the `x-lro-cancel-requested`
   * header: the Operation JSON has no such field). A worker polls this to learn of a cancellation.
   */
  async getWithCancellation(
    name: string,
    options: CallOptions = {},
  ): Promise<{ operation: Operation; cancelRequestTime?: string }> {
    const reply = await this.request<Operation>(
      'GET',
      `/v1/${operationName(name)}`,
      undefined,
      options.signal,
    );
    const cancelRequestTime = cancelRequestedOf(reply.headers);
    return cancelRequestTime === undefined
      ? { operation: reply.body }
      : { operation: reply.body, cancelRequestTime };
  }

  list(options: ListOptions = {}): Promise<OperationsPage> {
    const query = new URLSearchParams();
    if (options.filter) query.set('filter', options.filter);
    if (options.pageSize !== undefined) query.set('pageSize', String(options.pageSize));
    if (options.pageToken) query.set('pageToken', options.pageToken);
    if (options.orderBy) query.set('orderBy', options.orderBy);
    if (options.view) query.set('view', options.view);
    return this.call<Partial<OperationsPage>>(
      'GET',
      `/v1/operations${querySuffix(query)}`,
      undefined,
      options.signal,
    ).then(normalizePage);
  }

  /** Every operation matching the filter, page after page. */
  async *listAll(options: Omit<ListOptions, 'pageToken'> = {}): AsyncGenerator<Operation> {
    let pageToken = '';
    do {
      const page = await this.list({ ...options, pageToken });
      yield* page.operations;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** When the operation was created, last changed, ended; its limits and last heartbeat. */
  times(name: string, options: CallOptions = {}): Promise<OperationTimes> {
    return this.call('GET', `/v1/${operationName(name)}/times`, undefined, options.signal);
  }

  /** The events the subscriber handled for the operation, newest first. */
  history(name: string, options: CallOptions = {}): Promise<OperationHistory> {
    return this.call('GET', `/v1/${operationName(name)}/history`, undefined, options.signal);
  }

  children(name: string, options: PageOptions = {}): Promise<OperationsPage> {
    const query = new URLSearchParams();
    if (options.pageSize !== undefined) query.set('pageSize', String(options.pageSize));
    if (options.pageToken) query.set('pageToken', options.pageToken);
    if (options.orderBy) query.set('orderBy', options.orderBy);
    if (options.view) query.set('view', options.view);
    return this.call<Partial<OperationsPage>>(
      'GET',
      `/v1/${operationName(name)}/children${querySuffix(query)}`,
      undefined,
      options.signal,
    ).then(normalizePage);
  }

  /** Every immediate child, page after page. */
  async *childrenAll(
    name: string,
    options: Omit<PageOptions, 'pageToken'> = {},
  ): AsyncGenerator<Operation> {
    let pageToken = '';
    do {
      const page = await this.children(name, { ...options, pageToken });
      yield* page.operations;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  traverse(
    name: string,
    options: CallOptions & { maxDepth?: number } = {},
  ): Promise<OperationNode> {
    const query = new URLSearchParams();
    if (options.maxDepth !== undefined) query.set('maxDepth', String(options.maxDepth));
    return this.call(
      'GET',
      `/v1/${operationName(name)}:traverse${querySuffix(query)}`,
      undefined,
      options.signal,
    );
  }

  /** The parent operation's name, or undefined for a root operation. */
  async getParent(name: string, options: CallOptions = {}): Promise<string | undefined> {
    const reply = await this.call<GetParentResponse>(
      'GET',
      `/v1/${operationName(name)}:getParent`,
      undefined,
      options.signal,
    );
    return reply.parent || undefined;
  }

  async cancel(name: string, options: CallOptions = {}): Promise<void> {
    await this.call('POST', `/v1/${operationName(name)}:cancel`, {}, options.signal);
  }

  async delete(name: string, options: CallOptions = {}): Promise<void> {
    await this.call('DELETE', `/v1/${operationName(name)}`, undefined, options.signal);
  }

  /** One server wait: the state when done, or the latest after `timeoutMs` (server-capped). */
  wait(name: string, options: CallOptions & { timeoutMs?: number } = {}): Promise<Operation> {
    const body = options.timeoutMs === undefined ? {} : { timeout: durationOf(options.timeoutMs) };
    return this.call('POST', `/v1/${operationName(name)}:wait`, body, options.signal);
  }

  /** One server batch wait: every state, when all are done or after `timeoutMs`. */
  async batchWait(
    names: string[],
    options: CallOptions & { timeoutMs?: number } = {},
  ): Promise<Operation[]> {
    const body: Record<string, unknown> = { names: names.map(operationName) };
    if (options.timeoutMs !== undefined) body.timeout = durationOf(options.timeoutMs);
    const reply = await this.call<Partial<BatchWaitResponse>>(
      'POST',
      '/v1/operations:batchWait',
      body,
      options.signal,
    );
    const operations = reply.operations ?? [];
    // States left out of a reply that would have passed the server's byte budget: read each.
    const truncated = new Set(reply.truncated ?? []);
    if (truncated.size === 0) return operations;
    const call = options.signal ? { signal: options.signal } : {};
    return Promise.all(
      operations.map((op) => (truncated.has(op.name) ? this.get(op.name, call) : op)),
    );
  }

  /** The options' headers, those computed per request, and the parent (x-lro-parent). */
  private async headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.options.getHeaders) Object.assign(headers, await this.options.getHeaders());
    const parent = this.options.parent ?? currentParent();
    if (parent) headers[PARENT_HEADER] = operationName(parent);
    return headers;
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    return (await this.request<T>(method, path, body, signal)).body;
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<Reply<T>> {
    const headers = await this.headers();
    const { baseUrl, fetchFn } = this;
    return sendRequest<T>({ fetch: fetchFn, baseUrl, method, path, body, headers, signal });
  }
}

function normalizePage(page: Partial<OperationsPage>): OperationsPage {
  const normal = { operations: page.operations ?? [], nextPageToken: page.nextPageToken ?? '' };
  return page.times === undefined ? normal : { ...normal, times: page.times };
}

/**
 * Long-polls the server's wait until the operation is done (resolving with it, successful or
 * failed: check `error`), the deadline passes (WaitError DEADLINE_EXCEEDED carrying the last
 * state) or the signal aborts (WaitError CANCELLED). Transient failures are retried with
 * capped backoff within the deadline.
 */
export async function waitForOperation(
  client: OperationsClient,
  name: string,
  options: WaitForOperationOptions = {},
): Promise<Operation> {
  const [operation] = await waitLoop([name], options, (remaining, signal) =>
    client.wait(name, { timeoutMs: remaining, signal }).then((op) => [op]),
  );
  return operation as Operation;
}

/** Like waitForOperation for several operations (one server batch wait at a time). */
export function waitForOperations(
  client: OperationsClient,
  names: string[],
  options: WaitForOperationOptions = {},
): Promise<Operation[]> {
  return waitLoop(names, options, (remaining, signal) =>
    client.batchWait(names, { timeoutMs: remaining, signal }),
  );
}

export {
  Code,
  type CodeName,
  codeName,
  type ErrorBody,
  type ErrorDetail,
  httpStatusOf,
  isCode,
  LroError,
} from './errors.js';
export type { Any, Operation, OperationNode, Status } from './operation.js';
export type {
  HistoryItem,
  HistoryOutcome,
  OperationHistory,
  OperationTimes,
  OrderByValue,
} from './operator-views.js';
export {
  type BarOptions,
  messageOf,
  percentOf,
  renderBar,
  renderProgressLine,
  type StateName,
  stateOf,
} from './progress.js';
export { WaitError, type WaitForOperationOptions } from './wait-loop.js';
