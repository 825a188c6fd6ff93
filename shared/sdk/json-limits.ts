/**
 * Limits on JSON that comes in (HTTP bodies, events, notifications, page tokens). `JSON.parse`
 * itself copes with deep nesting, but everything after it that recurses (schema validation,
 * `JSON.stringify` before a Bigtable write, deep equality) overflows the stack on a value nested a
 * few thousand levels deep. A depth above `defaults.jsonDepthMax` is therefore refused before
 * parsing: a 400 over HTTP, a dead letter for an event, never a 5xx and never a transient failure.
 */
import { defaults } from './defaults.js';

export interface JsonLimits {
  /** Nesting of objects and arrays at most (a scalar is depth 0, `{}` depth 1). */
  maxDepth?: number;
  /** UTF-8 bytes at most. */
  maxBytes?: number;
}

/**
 * The deepest nesting of objects and arrays in a JSON text, scanning no further than one level
 * past `stopAbove` (so a huge hostile text costs no more than needed). Brackets inside strings do
 * not count.
 */
export function jsonDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; reason: string };

/** Parses a JSON text within the limits; the reason when it is not JSON or passes a limit. */
export function parseJsonWithin(text: string | Buffer, limits: JsonLimits = {}): JsonParseResult {
  const maxDepth = limits.maxDepth ?? defaults.jsonDepthMax;
  const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
  if (limits.maxBytes !== undefined && bytes > limits.maxBytes) {
    return { ok: false, reason: `JSON of ${bytes} bytes exceeds the limit of ${limits.maxBytes}` };
  }
  const source = typeof text === 'string' ? text : text.toString('utf8');
  if (jsonDepth(source, maxDepth) > maxDepth) {
    return { ok: false, reason: `JSON nested deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(source) };
  } catch (err) {
    return { ok: false, reason: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}
