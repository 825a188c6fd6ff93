/**
 * A pending cancellation request, exposed over HTTP without changing the Operation JSON: `GET
 * /v1/operations/{id}` answers with the header `x-lro-cancel-requested: <RFC 3339 time>` once
 * `:cancel` was called on the operation (whether or not the worker has ended it since). Workers
 * that only speak HTTP poll it to learn of a cancellation; the Operation stays AIP-151's.
 */

export const CANCEL_REQUESTED_HEADER = 'x-lro-cancel-requested';

/** The header's value for a recorded request time. */
export function cancelRequestedValue(time: Date): string {
  return time.toISOString();
}

/** The request time a response carries, or undefined when none was requested (or it is garbled). */
export function cancelRequestedOf(headers: Pick<Headers, 'get'>): string | undefined {
  const value = headers.get(CANCEL_REQUESTED_HEADER)?.trim();
  return value && !Number.isNaN(Date.parse(value)) ? value : undefined;
}
