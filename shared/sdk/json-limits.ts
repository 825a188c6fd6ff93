/**
 * Limits on JSON that comes in (HTTP bodies, events, notifications, page tokens). `JSON.parse`
 * itself copes with deep nesting, but everything after it that recurses (schema validation,
 * `JSON.stringify` before a Bigtable write, deep equality) overflows the stack on a value nested a
 * few thousand levels deep. A depth above `defaults.jsonDepthMax` is therefore refused before
 * parsing: a 400 over HTTP, a dead letter for an event, never a 5xx and never a transient failure.
 *
 * Values that JSON.parse would change silently are refused the same way when `exact` is asked
 * (HTTP bodies and events): what is stored is then exactly what was sent (see `inexactJson`).
 */
import { defaults } from './defaults.js';

export interface JsonLimits {
  /** Nesting of objects and arrays at most (a scalar is depth 0, `{}` depth 1). */
  maxDepth?: number;
  /** UTF-8 bytes at most. */
  maxBytes?: number;
  /** Refuse what cannot be kept exactly: see `inexactJson`. */
  exact?: boolean;
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
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  const inexact = limits.exact ? inexactJson(source) : undefined;
  return inexact === undefined ? { ok: true, value } : { ok: false, reason: inexact };
}

type Frame =
  | { kind: 'object'; keys: Set<string>; key: string | undefined; expectKey: boolean }
  | { kind: 'array'; index: number };

const PLAIN_KEY = /^[A-Za-z_$@][\w$@-]*$/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** A JSON path such as `metadata.items[2]["a b"]`, or `(the root)`. */
function pathOf(stack: Frame[], extraKey?: string): string {
  let path = '';
  const segment = (key: string) => {
    path += PLAIN_KEY.test(key) ? `${path === '' ? '' : '.'}${key}` : `[${JSON.stringify(key)}]`;
  };
  for (const frame of stack) {
    if (frame.kind === 'array') path += `[${frame.index}]`;
    else if (frame.key !== undefined && !frame.expectKey) segment(frame.key);
  }
  if (extraKey !== undefined) segment(extraKey);
  return path === '' ? '(the root)' : path;
}

/** Why a number literal would not be kept exactly by JSON.parse, or undefined. */
function inexactNumber(literal: string): string | undefined {
  const value = Number(literal);
  const shown = literal.length > 40 ? `${literal.slice(0, 37)}...` : literal;
  if (!Number.isFinite(value)) return `number ${shown} is out of the range of a double`;
  const mantissa = literal.split(/[eE]/)[0] ?? '';
  if (value === 0 && /[1-9]/.test(mantissa)) {
    return `number ${shown} is too small for a double (it would read as 0)`;
  }
  // An integer past 2^53 is kept when it is the double's own shortest form (what JSON.stringify
  // writes, such as 386401225160093660000), not when it reads as another one (9007199254740993).
  if (
    !Number.isSafeInteger(value) &&
    /^-?\d+$/.test(literal) &&
    BigInt(literal) !== BigInt(value) &&
    String(value) !== literal
  ) {
    return `integer ${shown} cannot be kept exactly (past 2^53); send it as a string`;
  }
  return undefined;
}

/**
 * The first thing in a valid JSON text that JSON.parse and the copies after it would change
 * silently, with its path; undefined when there is none:
 * - a number out of a double's range (`1e309` reads as Infinity and is stored as null), a
 *   non-zero number that reads as 0, an integer past 2^53 that reads as another one;
 * - a key given twice in one object (JSON.parse keeps the last one);
 * - a `__proto__` key (object copies drop it, or make it the copy's prototype).
 */
export function inexactJson(text: string): string | undefined {
  const stack: Frame[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 0x7b) {
      stack.push({ kind: 'object', keys: new Set(), key: undefined, expectKey: true });
      i++;
    } else if (c === 0x5b) {
      stack.push({ kind: 'array', index: 0 });
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      i++;
    } else if (c === 0x2c) {
      if (top?.kind === 'array') top.index++;
      else if (top) top.expectKey = true;
      i++;
    } else if (c === 0x3a) {
      if (top?.kind === 'object') top.expectKey = false;
      i++;
    } else if (c === 0x22) {
      let end = i + 1;
      let escaped = false;
      while (end < text.length && text.charCodeAt(end) !== 0x22) {
        if (text.charCodeAt(end) === 0x5c) {
          escaped = true;
          end++;
        }
        end++;
      }
      if (top?.kind === 'object' && top.expectKey) {
        const key = escaped
          ? (JSON.parse(text.slice(i, end + 1)) as string)
          : text.slice(i + 1, end);
        if (key === '__proto__') return `${pathOf(stack, key)}: the key __proto__ is not accepted`;
        if (top.keys.has(key)) return `${pathOf(stack, key)}: duplicate key ${JSON.stringify(key)}`;
        top.keys.add(key);
        top.key = key;
      }
      i = end + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const literal = NUMBER.exec(text)?.[0] ?? text.charAt(i);
      const problem = inexactNumber(literal);
      if (problem !== undefined) return `${pathOf(stack)}: ${problem}`;
      i += literal.length;
    } else {
      i++;
    }
  }
  return undefined;
}

/**
 * The key of the first number in `value` that JSON cannot carry (Infinity, -Infinity, NaN:
 * JSON.stringify writes them as null), or undefined when there is none. The SDKs refuse such
 * values instead of sending a null in their place.
 */
export function nonFiniteNumberKey(value: unknown): string | undefined {
  let found: string | undefined;
  JSON.stringify(value, (key: string, item: unknown) => {
    if (found === undefined && typeof item === 'number' && !Number.isFinite(item)) {
      found = key === '' ? '(the root)' : key;
    }
    return item;
  });
  return found;
}
