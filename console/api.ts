/**
 * The API as the console calls it: same origin, paths relative to the console's own URL (so an
 * API served under a path prefix works too), Google error bodies turned into ApiError.
 */
import type { DeadLetter } from '../shared/sdk/dead-letters.js';
import type { Operation } from '../shared/sdk/model.js';
import type { OperationHistory, OperationTimes } from '../shared/sdk/operator-views.js';

export type { DeadLetter, Operation, OperationHistory, OperationTimes };

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The absolute URL of an API path such as "v1/operations". */
export function apiUrl(path: string): string {
  return new URL(`../${path}`, window.location.href.split(/[?#]/)[0]).toString();
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new ApiError(0, 'UNAVAILABLE', `the API cannot be reached (${String(err)})`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: { status?: string; message?: string } } | undefined)?.error;
    throw new ApiError(
      res.status,
      error?.status ?? `HTTP ${res.status}`,
      error?.message ?? text.slice(0, 300),
    );
  }
  return parsed as T;
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

export interface DeadLettersPage {
  deadLetters?: DeadLetter[];
  nextPageToken?: string;
}

export const idOf = (name: string) => name.replace(/^operations\//, '');
export const enc = encodeURIComponent;
