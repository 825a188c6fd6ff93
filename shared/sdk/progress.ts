/**
 * Progress of an operation as read from its metadata, and the text progress bar that the CLI and
 * the demo draw from it.
 *
 * Metadata is free-form (a `google.protobuf.Any`), so progress is read by convention, first match
 * wins:
 *   - `percent`: a number from 0 to 100;
 *   - `progressPercent`: the same, as several Google APIs name it;
 *   - `progress`: a fraction from 0 to 1.
 * Values outside the range are clamped; anything else means "progress unknown". A short text
 * shown beside the bar comes from `message`, `stage` or `state` (the first string found).
 */
import type { Any, Operation } from './operation.js';

/** Progress in percent (0–100) from metadata, or undefined when it carries none. */
export function percentOf(metadata: Any | undefined): number | undefined {
  if (!metadata) return undefined;
  const percent = finite(metadata.percent) ?? finite(metadata.progressPercent);
  if (percent !== undefined) return clamp(percent, 0, 100);
  const fraction = finite(metadata.progress);
  if (fraction !== undefined) return clamp(fraction, 0, 1) * 100;
  return undefined;
}

/** The short status text of metadata (`message`, `stage` or `state`), if any. */
export function messageOf(metadata: Any | undefined): string | undefined {
  if (!metadata) return undefined;
  for (const key of ['message', 'stage', 'state']) {
    const value = metadata[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

/** What an operation's state is called in the CLI's output. */
export type StateName = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export function stateOf(operation: Pick<Operation, 'done' | 'error'>): StateName {
  if (!operation.done) return 'RUNNING';
  if (!operation.error) return 'SUCCEEDED';
  return operation.error.code === 1 ? 'CANCELLED' : 'FAILED';
}

export interface BarOptions {
  /** Characters between the brackets (default 24). */
  width?: number;
}

/**
 * `[##########--------------]  42%` for a known percentage, `[          ]    ?` when unknown.
 * Always the same length for one width, so that redrawing a line in place leaves no residue.
 */
export function renderBar(percent: number | undefined, options: BarOptions = {}): string {
  const width = Math.max(1, options.width ?? 24);
  if (percent === undefined) return `[${' '.repeat(width)}]    ?`;
  const p = clamp(percent, 0, 100);
  const filled = Math.round((p / 100) * width);
  const label = `${Math.floor(p)}%`.padStart(4);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${label}`;
}

/** One line for an operation: bar, state, message (e.g. for `lro watch` and the demo). */
export function renderProgressLine(operation: Operation, options: BarOptions = {}): string {
  const percent = operation.done && !operation.error ? 100 : percentOf(operation.metadata);
  const message = messageOf(operation.metadata);
  const state = stateOf(operation);
  return message
    ? `${renderBar(percent, options)}  ${state.padEnd(9)}  ${message}`
    : `${renderBar(percent, options)}  ${state}`;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
