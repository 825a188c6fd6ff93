/**
 * docs/contracts.md, the repository's statement of its public contracts, stays true and
 * reachable: it names every route the API answers (as docs/openapi.yaml describes them), every
 * environment variable the code reads, every event and notification type; its contracts keep
 * their numbers; and every "contract N" that code, tests, docs or Terraform cite points to it
 * ("docs/contracts.md, contract N", or a Markdown link to its section) and to a section that
 * exists. No emulator is needed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EventTypeSchema } from '../../shared/sdk/events.js';
import { NotificationTypeSchema } from '../../shared/sdk/notifications.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DOC = 'docs/contracts.md';
const doc = readFileSync(join(ROOT, DOC), 'utf8');

/** Folders that hold no source of the repository's own (dependencies, built output, state). */
const SKIP = new Set(['node_modules', 'dist', '.git', '.lro', '.terraform', 'bench-results']);
const SOURCE = /\.(ts|md|tf|ya?ml|html|css)$/;

/** Every source and documentation file of the repository, relative to its root. */
function sourceFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : sourceFiles(path);
    return SOURCE.test(entry.name) ? [relative(ROOT, path)] : [];
  });
}

/** GitHub's anchor of a Markdown heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = /^#{1,6} (.+)$/.exec(line);
    if (!fenced && heading?.[1]) anchors.add(slug(heading[1]));
  }
  return anchors;
}

/** The numbered sections: `## Contract N: title`, in document order. */
const sections = [...doc.matchAll(/^## Contract (\d+): (.+)$/gm)].map((m) => ({
  number: Number(m[1]),
  title: m[2] ?? '',
  start: m.index,
}));

/** The text of contract `n`'s section. */
function section(n: number): string {
  const i = sections.findIndex((s) => s.number === n);
  const at = sections[i];
  if (!at) throw new Error(`no section for contract ${n}`);
  return doc.slice(at.start, sections[i + 1]?.start ?? doc.length);
}

/** Route paths with their parameters written alike: `/v1/deadLetters/{deadLetterId}` → `{id}`. */
const samePath = (text: string) => text.replace(/\{[A-Za-z]+\}/g, '{id}');

describe('docs/contracts.md', () => {
  it('numbers its contracts 1, 2, 3, ... in order, the first ten as they have always been', () => {
    expect(sections.map((s) => s.number)).toEqual(sections.map((_, i) => i + 1));
    // The numbers are cited across the code: the first ten keep their subjects.
    const subjects = [
      'HTTP API',
      'worker events',
      'notifications',
      'configuration and the local stack',
      'deadlines and heartbeats',
      'dead letters',
      'console',
      'packages',
      'operator views',
      'wake-ups',
    ];
    for (const [i, subject] of subjects.entries()) {
      expect(sections[i]?.title, `contract ${i + 1}`).toContain(subject);
    }
  });

  it('names every route of the API, as docs/openapi.yaml describes them', () => {
    const openapi = parse(readFileSync(join(ROOT, 'docs/openapi.yaml'), 'utf8')) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(openapi.paths).flatMap(([path, item]) =>
      ['get', 'post', 'delete', 'put', 'patch']
        .filter((method) => method in item)
        .map((method) => `${method.toUpperCase()} ${samePath(path)}`),
    );
    expect(routes.length).toBeGreaterThanOrEqual(16);
    const text = samePath(doc);
    const missing = routes.filter(
      (route) => !text.includes(`\`${route}\``) && !text.includes(`\`${route} `),
    );
    expect(missing, 'routes that docs/contracts.md does not name').toEqual([]);
  });

  it('lists every variable of the configuration with its default', async () => {
    // Found by what it exports rather than by path, so that the module may move between folders.
    const module = sourceFiles()
      .filter((f) => f.startsWith('shared/') && f.endsWith('/config.ts'))
      .find((f) =>
        readFileSync(join(ROOT, f), 'utf8').includes('export const configVariableNames'),
      );
    expect(module, 'the configuration module').toBeDefined();
    const { configVariableNames } = (await import(
      pathToFileURL(join(ROOT, module ?? '')).href
    )) as {
      configVariableNames: readonly string[];
    };
    expect(configVariableNames.length).toBeGreaterThan(20);
    const table = section(4);
    const rows = new Map(
      [...table.matchAll(/^\| (`[^|]+`) \| ([^|]+) \|/gm)].flatMap((m) =>
        [...(m[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((v) => [v[1], m[2]?.trim()]),
      ),
    );
    for (const name of configVariableNames) {
      expect(rows.has(name), `${name} in contract 4's table`).toBe(true);
      expect(rows.get(name), `${name}'s default`).not.toBe('');
    }
  });

  it('names every LRO_ variable the code reads', () => {
    const read = new Set(
      sourceFiles()
        .filter((f) => f.endsWith('.ts') && !f.startsWith('test/'))
        .flatMap((f) => [...readFileSync(join(ROOT, f), 'utf8').matchAll(/\bLRO_[A-Z0-9_]+\b/g)])
        .map((m) => m[0]),
    );
    expect(read.size).toBeGreaterThan(20);
    const missing = [...read].filter((name) => !section(4).includes(`\`${name}\``));
    expect(missing, 'variables that contract 4 does not name').toEqual([]);
  });

  it('names every event type (contract 2) and notification type (contract 3)', () => {
    for (const type of EventTypeSchema.options) expect(section(2)).toContain(`\`${type}\``);
    for (const type of NotificationTypeSchema.options) {
      expect(section(3)).toContain(`| \`${type}\` |`);
    }
  });

  it('links only to files and sections that exist', () => {
    const own = anchorsOf(doc);
    // Links outside code spans (an ID pattern such as `([a-z0-9-]{0,61})` is not one).
    const links = [...doc.replace(/`[^`\n]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)].map(
      (m) => m[1] ?? '',
    );
    expect(links.length).toBeGreaterThan(20);
    for (const link of links) {
      if (/^https?:/.test(link)) continue;
      const [file = '', anchor] = link.split('#');
      if (file === '') {
        expect(own.has(anchor ?? ''), link).toBe(true);
        continue;
      }
      const target = resolve(ROOT, 'docs', file);
      const text = readFileSync(target, 'utf8');
      if (anchor) expect(anchorsOf(text).has(anchor), link).toBe(true);
    }
  });
});

describe('citations of the contracts', () => {
  // This file names contracts while checking them: it is not a citation.
  const cited = sourceFiles()
    .filter((f) => f !== DOC && f !== 'test/unit/contracts-doc.test.ts')
    .flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      return [...text.matchAll(/\bcontracts? (\d+)\b/gi)].map((m) => ({
        file,
        line: text.slice(0, m.index).split('\n').length,
        number: Number(m[1]),
        before: text.slice(Math.max(0, m.index - 'docs/contracts.md, '.length), m.index),
        after: text.slice(m.index + m[0].length, m.index + m[0].length + 80),
      }));
    });

  it('are found (code, tests and docs cite contracts)', () => {
    expect(cited.length).toBeGreaterThanOrEqual(20);
  });

  it('point to docs/contracts.md, to a contract it states', () => {
    const numbers = new Set(sections.map((s) => s.number));
    const astray = cited
      .filter(({ before, after }) => {
        const plain = before === 'docs/contracts.md, ';
        const link =
          before.endsWith('[') && /^\]\((docs\/)?contracts\.md#contract-\d+-/.test(after);
        return !plain && !link;
      })
      .map(({ file, line }) => `${file}:${line}`);
    expect(astray, 'cite as "docs/contracts.md, contract N" or link its section').toEqual([]);
    const unknown = cited.filter((c) => !numbers.has(c.number)).map((c) => `${c.file}:${c.line}`);
    expect(unknown, 'citations of a contract docs/contracts.md does not state').toEqual([]);
  });

  it('that link to a section link to the one of that number', () => {
    for (const { file, line, number, after } of cited) {
      const anchor = /^\]\((?:docs\/)?contracts\.md#(contract-(\d+)-[^)]+)\)/.exec(after);
      if (!anchor) continue;
      expect(Number(anchor[2]), `${file}:${line}`).toBe(number);
      expect(anchorsOf(doc).has(anchor[1] ?? ''), `${file}:${line}`).toBe(true);
    }
  });
});
