/**
 * The API as the console calls it: same origin, paths relative to the console's own URL (so an
 * API served under a path prefix works too), through the client SDK's request core (JSON, the
 * headers it sends, Google error bodies as LroError).
 */
import type { DeadLetter, ListDeadLettersResponse } from '../shared/sdk/dead-letters.js';
import type { GetParentResponse, Operation } from '../shared/sdk/model.js';
import type { OperationHistory, OperationTimes } from '../shared/sdk/operator-views.js';
import { sendRequest } from '../shared/sdk/request.js';

export type { DeadLetter, GetParentResponse, Operation, OperationHistory, OperationTimes };

/** The API's base URL: the console's own URL one level up, without the trailing slash. */
function apiBase(): string {
  return new URL('../', window.location.href.split(/[?#]/)[0]).toString().replace(/\/+$/, '');
}

/** The absolute URL of an API path such as "v1/operations". */
export function apiUrl(path: string): string {
  return `${apiBase()}/${path}`;
}

/** One API call; fails with the SDK's LroError. */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const base = { fetch: globalThis.fetch, baseUrl: apiBase(), method, path: `/${path}` };
  return (await sendRequest<T>(body === undefined ? base : { ...base, body })).body;
}

export interface OperationsPage {
  operations?: Operation[];
  nextPageToken?: string;
  /** With view=FULL. */
  times?: OperationTimes[];
  /** With showTotalSize=true. */
  totalSize?: number;
  totalSizeCapped?: boolean;
}

/** A page of dead letters as the API answers it (shared/sdk/dead-letters.ts). */
export type DeadLettersPage = ListDeadLettersResponse;

export const idOf = (name: string) => name.replace(/^operations\//, '');
export const enc = encodeURIComponent;
