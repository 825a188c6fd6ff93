/**
 * The AIP-160 filter subset of ListOperations, compiled to a predicate over stored operations.
 *
 *   expression := term { ("AND" | "OR") term }      (AND binds tighter than OR)
 *   term       := ["NOT" | "-"] ( "(" expression ")" | comparison | field )
 *   comparison := field ("=" | "!=" | "<" | "<=" | ">" | ">=") value
 *
 * Fields: `done` (alone it means `done = true`), `error.code` (a number or a code name such as
 * CANCELLED), `create_time` / `update_time` (RFC 3339 strings; `createTime` / `updateTime` too),
 * `metadata.@type` (also `metadata.type_url`), `response.@type`, `parent`, `name`.
 * Values: true, false, integers, code names, quoted strings. Anything else is INVALID_ARGUMENT.
 * `name = "operations/demo-*"` (a trailing `*`, AIP-160's wildcard) matches names that start with
 * the text before it (an ID prefix such as `"demo-*"` is accepted too); when such a term is
 * required (the filter has no OR and no NOT), the list reads only that key range (`namePrefixOf`).
 */
import { Code, invalidArgument } from '../../sdk/errors.js';
import type { OperationRecord } from './store.js';

export type OperationPredicate = (record: OperationRecord) => boolean;

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; text: string; at: number }
  | { kind: 'op'; text: string; at: number }
  | { kind: 'paren'; text: '(' | ')'; at: number };

type Operator = '=' | '!=' | '<' | '<=' | '>' | '>=';

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source.charAt(i);
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ kind: 'paren', text: c, at: i });
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < source.length && source.charAt(j) !== c) {
        if (source.charAt(j) === '\\' && j + 1 < source.length) j++;
        text += source.charAt(j);
        j++;
      }
      if (j >= source.length) throw bad(`unterminated string at ${i}`);
      tokens.push({ kind: 'string', text, at: i });
      i = j + 1;
    } else if ('=!<>'.includes(c)) {
      const two = source.slice(i, i + 2);
      const text = ['!=', '<=', '>='].includes(two) ? two : c;
      if (text === '!') throw bad(`unexpected "!" at ${i}`);
      tokens.push({ kind: 'op', text, at: i });
      i += text.length;
    } else if (c === '-' && !/[0-9]/.test(source.charAt(i + 1))) {
      tokens.push({ kind: 'word', text: 'NOT', at: i });
      i++;
    } else if (/[A-Za-z0-9_@.:+-]/.test(c)) {
      let j = i;
      while (j < source.length && /[A-Za-z0-9_@.:+-]/.test(source.charAt(j))) j++;
      tokens.push({ kind: 'word', text: source.slice(i, j), at: i });
      i = j;
    } else {
      throw bad(`unexpected character ${JSON.stringify(c)} at ${i}`);
    }
  }
  return tokens;
}

function bad(message: string) {
  return invalidArgument(`invalid filter: ${message}`);
}

const fieldAliases: Record<string, string> = {
  done: 'done',
  'error.code': 'error.code',
  create_time: 'create_time',
  createTime: 'create_time',
  update_time: 'update_time',
  updateTime: 'update_time',
  'metadata.@type': 'metadata.@type',
  'metadata.type_url': 'metadata.@type',
  'response.@type': 'response.@type',
  parent: 'parent',
  name: 'name',
};

/** The code of a google.rpc.Code name such as CANCELLED (an own enum member, nothing inherited). */
function codeOfName(name: string): number | undefined {
  if (!Object.hasOwn(Code, name)) return undefined;
  const code: unknown = Code[name as keyof typeof Code];
  return typeof code === 'number' ? code : undefined;
}

type Value = { kind: 'word' | 'string'; text: string; at: number };

function compare(op: Operator, a: number | string, b: number | string): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function comparison(field: string, op: Operator, value: Value): OperationPredicate {
  switch (field) {
    case 'done': {
      if (value.kind !== 'word' || (value.text !== 'true' && value.text !== 'false')) {
        throw bad(`done compares with true or false (at ${value.at})`);
      }
      if (op !== '=' && op !== '!=') throw bad(`done supports = and != only`);
      const want = value.text === 'true';
      return (r) => compare(op, String(r.operation.done), String(want));
    }
    case 'error.code': {
      let code: number;
      if (value.kind === 'word' && /^\d+$/.test(value.text)) code = Number(value.text);
      else if (value.kind === 'word' && codeOfName(value.text) !== undefined) {
        code = codeOfName(value.text) as number;
      } else throw bad(`error.code compares with a number or a code name (at ${value.at})`);
      // An operation without an error has code 0 (OK).
      return (r) => compare(op, r.operation.error?.code ?? 0, code);
    }
    case 'create_time':
    case 'update_time': {
      const ms = Date.parse(value.text);
      if (!/^\d{4}-\d{2}-\d{2}T/.test(value.text) || Number.isNaN(ms)) {
        throw bad(`${field} compares with an RFC 3339 time such as "2026-01-02T03:04:05Z"`);
      }
      return field === 'create_time'
        ? (r) => compare(op, r.createTime.getTime(), ms)
        : (r) => compare(op, r.updateTime.getTime(), ms);
    }
    case 'metadata.@type':
    case 'response.@type':
    case 'parent':
    case 'name': {
      if (op !== '=' && op !== '!=') throw bad(`${field} supports = and != only`);
      const get =
        field === 'metadata.@type'
          ? (r: OperationRecord) => r.operation.metadata?.['@type'] ?? ''
          : field === 'response.@type'
            ? (r: OperationRecord) => r.operation.response?.['@type'] ?? ''
            : field === 'parent'
              ? (r: OperationRecord) => r.parent ?? ''
              : (r: OperationRecord) => r.operation.name;
      if (field === 'name' && op === '=' && value.text.endsWith('*')) {
        const prefix = namePrefixText(value.text);
        return (r) => r.operation.name.startsWith(prefix);
      }
      return (r) => compare(op, get(r), value.text);
    }
    default:
      throw bad(`unknown field ${field}`);
  }
}

/** The name prefix of a `name = "…*"` value: `operations/` added to a bare ID prefix. */
function namePrefixText(value: string): string {
  const text = value.slice(0, -1);
  return text.startsWith('operations/') || 'operations/'.startsWith(text)
    ? text
    : `operations/${text}`;
}

/**
 * The operation ID prefix that every match of a (valid) filter starts with, from a required
 * `name = "…*"` term; undefined when there is none (then no key range can be narrowed).
 */
export function namePrefixOf(source: string): string | undefined {
  const tokens = tokenize(source);
  if (tokens.some((t) => t.kind === 'word' && (t.text === 'OR' || t.text === 'NOT'))) {
    return undefined;
  }
  let longest: string | undefined;
  for (let i = 0; i + 2 < tokens.length; i++) {
    const [field, op, value] = [tokens[i], tokens[i + 1], tokens[i + 2]];
    if (field?.kind !== 'word' || field.text !== 'name') continue;
    if (op?.kind !== 'op' || op.text !== '=') continue;
    if ((value?.kind !== 'string' && value?.kind !== 'word') || !value.text.endsWith('*')) continue;
    const name = namePrefixText(value.text);
    if (name.length < 'operations/'.length) continue;
    const id = name.slice('operations/'.length);
    if (longest === undefined || id.length > longest.length) longest = id;
  }
  return longest;
}

/** Compiles a filter; the empty filter matches everything. INVALID_ARGUMENT when malformed. */
export function compileFilter(source: string): OperationPredicate {
  const tokens = tokenize(source);
  if (tokens.length === 0) return () => true;
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => {
    const t = tokens[pos++];
    if (!t) throw bad('unexpected end');
    return t;
  };

  const expression = (): OperationPredicate => {
    let left = conjunction();
    while (peek()?.kind === 'word' && peek()?.text === 'OR') {
      pos++;
      const right = conjunction();
      const l = left;
      left = (r) => l(r) || right(r);
    }
    return left;
  };
  const conjunction = (): OperationPredicate => {
    let left = term();
    for (;;) {
      const t = peek();
      if (t?.kind === 'word' && t.text === 'AND') {
        pos++;
      } else if (
        !t ||
        (t.kind === 'paren' && t.text === ')') ||
        (t.kind === 'word' && t.text === 'OR')
      ) {
        break;
      }
      // Juxtaposition is an implicit AND (AIP-160).
      const right = term();
      const l = left;
      left = (r) => l(r) && right(r);
    }
    return left;
  };
  const term = (): OperationPredicate => {
    const t = next();
    if (t.kind === 'word' && t.text === 'NOT') {
      const inner = term();
      return (r) => !inner(r);
    }
    if (t.kind === 'paren' && t.text === '(') {
      const inner = expression();
      const close = next();
      if (close.kind !== 'paren' || close.text !== ')') throw bad(`expected ")" at ${close.at}`);
      return inner;
    }
    if (t.kind !== 'word') throw bad(`expected a field at ${t.at}`);
    const field = fieldAliases[t.text];
    if (!field) throw bad(`unknown field ${JSON.stringify(t.text)} at ${t.at}`);
    const op = peek();
    if (op?.kind !== 'op') {
      if (field === 'done') return (r) => r.operation.done;
      throw bad(`expected a comparison after ${t.text}`);
    }
    pos++;
    const value = next();
    if (value.kind !== 'word' && value.kind !== 'string') {
      throw bad(`expected a value at ${value.at}`);
    }
    return comparison(field, op.text as Operator, value);
  };

  const predicate = expression();
  const rest = peek();
  if (rest) throw bad(`unexpected ${JSON.stringify(rest.text)} at ${rest.at}`);
  return predicate;
}
