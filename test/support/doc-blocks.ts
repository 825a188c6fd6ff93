/**
 * Fenced code blocks of the Markdown docs, for the docs-as-tests runner (test/e2e/docs.test.ts).
 *
 * A block whose info string carries the word `doctest` (```` ```sh doctest ````) is one the reader
 * is told to run: its commands run in order, in one shell per document, against a fresh stack.
 * Within such a block:
 * - a command's expected output is the full-line comments right after it (`# {"done":false}`) or
 *   an inline comment that starts with `{` or `[` (`curl ... # {}`); `...` or `…` stand for any
 *   text; other comments are prose;
 * - a command is expected to exit 0 unless its inline comment says `exits N`.
 * Every ```` ```ts ```` block is compiled against the built packages.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

export interface Block {
  /** Path relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  tags: string[];
  code: string;
}

export interface Step {
  /** 1-based line of the command in its document. */
  line: number;
  command: string;
  /** Expected output (undefined: not compared). */
  expected?: string;
  expectedExit: number;
}

export function readBlocks(root: string, path: string): Block[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: Block[] = [];
  let open: { line: number; lang: string; tags: string[]; body: string[] } | undefined;
  for (const [i, text] of lines.entries()) {
    const fence = /^```(.*)$/.exec(text);
    if (!open && fence) {
      const [lang = '', ...tags] = (fence[1] ?? '').trim().split(/\s+/);
      open = { line: i + 1, lang, tags, body: [] };
    } else if (open && text === '```') {
      blocks.push({
        file: relative(root, path),
        line: open.line,
        lang: open.lang,
        tags: open.tags,
        code: open.body.join('\n'),
      });
      open = undefined;
    } else if (open) {
      open.body.push(text);
    }
  }
  return blocks;
}

/** Whether bash can parse `text` as complete commands (not in an open quote or continuation). */
function complete(text: string): boolean {
  if (text.endsWith('\\')) return false; // bash -n accepts a continuation at the end of input
  return spawnSync('bash', ['-n', '-c', text], { stdio: 'ignore' }).status === 0;
}

/** Splits an inline comment off a command line (a `#` after whitespace, outside quotes). */
function inlineComment(line: string): string | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#' && i > 0 && /\s/.test(line[i - 1] ?? '')) return line.slice(i + 1).trim();
  }
  return undefined;
}

/** The steps of a `doctest` block: commands with the output and exit code the doc shows. */
export function steps(block: Block): Step[] {
  const lines = block.code.split('\n');
  const result: Step[] = [];
  let i = 0;
  while (i < lines.length) {
    const first = lines[i] ?? '';
    if (first.trim() === '' || first.trimStart().startsWith('#')) {
      i++;
      continue;
    }
    const start = i;
    let command = first;
    i++;
    while (!complete(command) && i < lines.length) {
      command += `\n${lines[i]}`;
      i++;
    }
    const expectedLines: string[] = [];
    while (i < lines.length && /^#( |$)/.test(lines[i] ?? '')) {
      expectedLines.push((lines[i] ?? '').replace(/^# ?/, ''));
      i++;
    }
    const lastLine = command.split('\n').at(-1) ?? '';
    const comment = inlineComment(lastLine);
    let expected: string | undefined =
      expectedLines.length > 0 ? expectedLines.join('\n') : undefined;
    if (expected === undefined && comment && /^[[{]/.test(comment)) expected = comment;
    const exit = comment ? /\bexits? (\d+)\b/.exec(comment) : null;
    result.push({
      line: block.line + 1 + start,
      command,
      ...(expected !== undefined ? { expected } : {}),
      expectedExit: exit ? Number(exit[1]) : 0,
    });
  }
  return result;
}

/** Whether `actual` is what the doc shows: `...`/`…` match any text, whitespace at the ends aside. */
export function matchesShown(expected: string, actual: string): boolean {
  const pattern = expected
    .trim()
    .split(/\.\.\.|…/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*?');
  return new RegExp(`^${pattern}$`).test(actual.trim());
}
