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
 * This module is the entry point of the `@cloud-lro/client` package (packages/client): it and
 * what it imports must not depend on any package (no zod, no Google Cloud client).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { cancelRequestedOf } from './cancel-requested.js';
import { defaults } from './defaults.js';
import { Code, codeOfHttpStatus, type ErrorDetail, isCode, LroError } from './errors.js';
import { nonFiniteNumberKey } from './json-limits.js';
import type {
  Any,
  BatchWaitResponse,
  GetParentResponse,
  Operation,
  OperationNode,
} from './operation.js';
import type { OperationHistory, OperationTimes, OrderByValue } from './operator-views.js';
import { PARENT_HEADER } from './parent-header.js';

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

/** An LroError that also carries the last state seen (deadline or abort of a wait). */
export class WaitError extends LroError {
  constructor(
    code: Code,
    message: string,
    readonly operation: Operation | undefined,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? {} : { cause });
  }
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

/** `operations/{id}` for an ID or a name. */
function nameOf(idOrName: string): string {
  return idOrName.startsWith('operations/') ? idOrName : `operations/${idOrName}`;
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
    return new OperationsClient({ ...this.options, parent: nameOf(parent) });
  }

  create(options: CreateOptions = {}): Promise<Operation> {
    const body: Record<string, unknown> = {};
    if (options.operationId !== undefined) body.operationId = options.operationId;
    if (options.parent !== undefined) body.parent = nameOf(options.parent);
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
    return this.call('GET', `/v1/${nameOf(name)}`, undefined, options.signal);
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
      `/v1/${nameOf(name)}`,
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
      `/v1/operations${suffix(query)}`,
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
    return this.call('GET', `/v1/${nameOf(name)}/times`, undefined, options.signal);
  }

  /** The events the subscriber handled for the operation, newest first. */
  history(name: string, options: CallOptions = {}): Promise<OperationHistory> {
    return this.call('GET', `/v1/${nameOf(name)}/history`, undefined, options.signal);
  }

  children(name: string, options: PageOptions = {}): Promise<OperationsPage> {
    const query = new URLSearchParams();
    if (options.pageSize !== undefined) query.set('pageSize', String(options.pageSize));
    if (options.pageToken) query.set('pageToken', options.pageToken);
    if (options.orderBy) query.set('orderBy', options.orderBy);
    if (options.view) query.set('view', options.view);
    return this.call<Partial<OperationsPage>>(
      'GET',
      `/v1/${nameOf(name)}/children${suffix(query)}`,
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
      `/v1/${nameOf(name)}:traverse${suffix(query)}`,
      undefined,
      options.signal,
    );
  }

  /** The parent operation's name, or undefined for a root operation. */
  async getParent(name: string, options: CallOptions = {}): Promise<string | undefined> {
    const reply = await this.call<GetParentResponse>(
      'GET',
      `/v1/${nameOf(name)}:getParent`,
      undefined,
      options.signal,
    );
    return reply.parent || undefined;
  }

  async cancel(name: string, options: CallOptions = {}): Promise<void> {
    await this.call('POST', `/v1/${nameOf(name)}:cancel`, {}, options.signal);
  }

  async delete(name: string, options: CallOptions = {}): Promise<void> {
    await this.call('DELETE', `/v1/${nameOf(name)}`, undefined, options.signal);
  }

  /** One server wait: the state when done, or the latest after `timeoutMs` (server-capped). */
  wait(name: string, options: CallOptions & { timeoutMs?: number } = {}): Promise<Operation> {
    const body = options.timeoutMs === undefined ? {} : { timeout: durationOf(options.timeoutMs) };
    return this.call('POST', `/v1/${nameOf(name)}:wait`, body, options.signal);
  }

  /** One server batch wait: every state, when all are done or after `timeoutMs`. */
  async batchWait(
    names: string[],
    options: CallOptions & { timeoutMs?: number } = {},
  ): Promise<Operation[]> {
    const body: Record<string, unknown> = { names: names.map(nameOf) };
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

  private async headers(): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    Object.assign(headers, this.options.headers);
    if (this.options.getHeaders) Object.assign(headers, await this.options.getHeaders());
    const parent = this.options.parent ?? currentParent();
    if (parent) headers[PARENT_HEADER] = nameOf(parent);
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
  ): Promise<{ body: T; headers: Headers }> {
    const headers = await this.headers();
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      const nonFinite = nonFiniteNumberKey(body);
      if (nonFinite !== undefined) {
        throw new LroError(
          Code.INVALID_ARGUMENT,
          `${method} ${path}: ${nonFinite}: Infinity and NaN cannot be sent in JSON (they would arrive as null)`,
        );
      }
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    let res: Response;
    try {
      res = await this.fetchFn(this.baseUrl + path, init);
    } catch (err) {
      if (signal?.aborted) throw new LroError(Code.CANCELLED, 'request aborted', { cause: err });
      throw new LroError(Code.UNAVAILABLE, `${method} ${path} failed: ${messageOf(err)}`, {
        cause: err,
      });
    }
    const text = await res.text().catch((err: unknown) => {
      throw new LroError(Code.UNAVAILABLE, `reading the reply failed: ${messageOf(err)}`, {
        cause: err,
      });
    });
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw errorOf(res.status, parsed, text);
    if (parsed === undefined) {
      throw new LroError(Code.INTERNAL, `${method} ${path}: the reply is not JSON`);
    }
    return { body: parsed as T, headers: res.headers };
  }
}

function suffix(query: URLSearchParams): string {
  const text = query.toString();
  return text ? `?${text}` : '';
}

function normalizePage(page: Partial<OperationsPage>): OperationsPage {
  const normal = { operations: page.operations ?? [], nextPageToken: page.nextPageToken ?? '' };
  return page.times === undefined ? normal : { ...normal, times: page.times };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The LroError of an error reply: the code from its `status`, else from the HTTP status. */
function errorOf(httpStatus: number, body: unknown, text: string): LroError {
  const error =
    typeof body === 'object' && body !== null
      ? (body as { error?: { message?: unknown; status?: unknown; details?: unknown } }).error
      : undefined;
  const named =
    typeof error?.status === 'string' ? (Code as Record<string, unknown>)[error.status] : undefined;
  const code = isCode(named) ? named : codeOfHttpStatus(httpStatus);
  const message =
    typeof error?.message === 'string' ? error.message : text.slice(0, 200) || `HTTP ${httpStatus}`;
  const details = Array.isArray(error?.details) ? (error.details as ErrorDetail[]) : [];
  return new LroError(code, message, { details });
}

export interface WaitForOperationOptions {
  /** Overall deadline in milliseconds; DEADLINE_EXCEEDED (a WaitError) when it passes. */
  timeout?: number;
  /** Called with the metadata each time it changed (not on every server reply). */
  onMetadata?: (metadata: Any | undefined, operation: Operation) => void;
  signal?: AbortSignal;
  /** The timeout of each server wait (the server caps it too). */
  pollTimeout?: number;
}

const TRANSIENT = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED]);

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

async function waitLoop(
  names: string[],
  options: WaitForOperationOptions,
  waitOnce: (timeoutMs: number, signal: AbortSignal) => Promise<Operation[]>,
): Promise<Operation[]> {
  const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
  const pollTimeout = options.pollTimeout ?? defaults.clientWaitRequestTimeoutMs;
  const lastMetadata = new Map<string, string>();
  let latest: Operation[] | undefined;
  let retryDelay: number = defaults.clientRetryInitialMs;
  const label = names.length === 1 ? (names[0] as string) : `${names.length} operations`;
  const last = () => (names.length === 1 ? latest?.[0] : undefined);

  for (;;) {
    if (options.signal?.aborted) {
      throw new WaitError(
        Code.CANCELLED,
        `wait for ${label} aborted`,
        last(),
        options.signal.reason,
      );
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const error = new WaitError(
        Code.DEADLINE_EXCEEDED,
        `${label} not done before the deadline`,
        last(),
      );
      if (latest) Object.assign(error, { operations: latest });
      throw error;
    }
    const timeoutMs = Math.min(remaining, pollTimeout);
    // The request may outlive the server's wait by a little (network, server cap) but not more.
    const guard = new AbortController();
    const timer = setTimeout(
      () => guard.abort(),
      Math.min(remaining, timeoutMs + defaults.clientWaitRequestTimeoutMs),
    );
    const onAbort = () => guard.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      latest = await waitOnce(timeoutMs, guard.signal);
      retryDelay = defaults.clientRetryInitialMs;
      for (const op of latest) {
        const key = JSON.stringify(op.metadata ?? null);
        if (lastMetadata.get(op.name) !== key) {
          lastMetadata.set(op.name, key);
          options.onMetadata?.(op.metadata, op);
        }
      }
      if (latest.every((op) => op.done)) return latest;
    } catch (err) {
      if (options.signal?.aborted) continue; // reported at the top of the loop
      if (guard.signal.aborted) continue; // our own guard: the deadline check decides
      if (!(err instanceof LroError) || !TRANSIENT.has(err.code)) throw err;
      await sleep(Math.min(retryDelay, Math.max(0, deadline - Date.now())), options.signal);
      retryDelay = Math.min(retryDelay * 2, defaults.clientRetryMaxMs);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
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
