import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, LroError } from '../../shared/sdk/errors.js';
import type { Any } from '../../shared/sdk/model.js';
import type { Config } from '../../shared/service/runtime/config.js';
import {
  BigtableOperationStore,
  deleteTable,
  ensureTable,
  familyGcRules,
} from '../../shared/service/store/bigtable/operation-store.js';
import type { OperationRecord, OperationStore } from '../../shared/service/store/store.js';
import { testConfig, uniqueSuffix } from '../support/env.js';
import { shuffled } from '../support/pipeline.js';

const meta = (n: number): Any => ({ '@type': 'type.googleapis.com/test.Progress', percent: n });

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(LroError);
    return (err as LroError).code;
  }
}

async function listAll(store: OperationStore, filter: string, pageSize: number) {
  const seen: OperationRecord[] = [];
  let pageToken = '';
  let pages = 0;
  do {
    const page = await store.list({ filter, pageSize, pageToken });
    expect(page.operations.length).toBeLessThanOrEqual(pageSize);
    seen.push(...page.operations);
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken);
  return { seen, pages };
}

let config: Config;
let store: BigtableOperationStore;
const id = () => `op-${uniqueSuffix()}`;

beforeAll(async () => {
  config = testConfig();
  await ensureTable(config);
  store = new BigtableOperationStore(config);
});

afterAll(async () => {
  await store.close();
  await deleteTable(config);
});

describe('create and get', () => {
  it('creates with a caller ID, initial metadata, and reads it back', async () => {
    const name = `operations/${id()}`;
    const created = await store.create({ id: name.slice(11), metadata: meta(0) });
    expect(created.operation).toEqual({ name, done: false, metadata: meta(0) });
    const got = await store.get(name);
    expect(got.operation).toEqual(created.operation);
    expect(got.createTime.getTime()).toBe(created.createTime.getTime());
  });

  it('generates a UUID when no ID is given', async () => {
    const created = await store.create();
    expect(created.operation.name).toMatch(/^operations\/[0-9a-f]{8}-[0-9a-f-]{27}$/);
  });

  it('refuses a taken ID with ALREADY_EXISTS and leaves the operation untouched', async () => {
    const opId = id();
    await store.create({ id: opId, metadata: meta(1) });
    expect(await codeOf(store.create({ id: opId, metadata: meta(2) }))).toBe(Code.ALREADY_EXISTS);
    expect((await store.get(`operations/${opId}`)).operation.metadata).toEqual(meta(1));
  });

  it('lets exactly one of many concurrent creates of one ID win', async () => {
    const opId = id();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.create({ id: opId, metadata: meta(i) })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as LroError).code).toBe(Code.ALREADY_EXISTS);
    }
  });

  it('returns the same operation for a retried create with the same requestId', async () => {
    const requestId = `req-${uniqueSuffix()}`;
    const first = await store.create({ requestId, metadata: meta(5) });
    const again = await store.create({ requestId, metadata: meta(5) });
    expect(again.operation.name).toBe(first.operation.name);
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => store.create({ requestId: `${requestId}-c` })),
    );
    expect(new Set(concurrent.map((r) => r.operation.name)).size).toBe(1);
  });

  it('answers NOT_FOUND for an unknown operation', async () => {
    expect(await codeOf(store.get(`operations/${id()}`))).toBe(Code.NOT_FOUND);
  });

  it('rejects malformed names and IDs with INVALID_ARGUMENT', async () => {
    expect(await codeOf(store.get('operations/Bad_ID'))).toBe(Code.INVALID_ARGUMENT);
    expect(await codeOf(store.get('jobs/x'))).toBe(Code.INVALID_ARGUMENT);
    expect(await codeOf(store.create({ id: '-x' }))).toBe(Code.INVALID_ARGUMENT);
  });

  it('requires the parent to exist', async () => {
    expect(await codeOf(store.create({ parent: `operations/${id()}` }))).toBe(Code.NOT_FOUND);
  });
});

describe('terminal writes', () => {
  it('of two racing terminal writes exactly one wins, every time', async () => {
    for (let trial = 0; trial < 40; trial++) {
      const { operation } = await store.create();
      const [a, b] = await Promise.all([
        store.complete(operation.name, {
          response: { '@type': 'type.googleapis.com/t.R', w: 'a' },
        }),
        store.complete(operation.name, { error: { code: Code.INTERNAL, message: 'b' } }),
      ]);
      expect([a.applied, b.applied].filter(Boolean)).toHaveLength(1);
      const winner = a.applied ? a : b;
      const final = await store.get(operation.name);
      expect(final.operation).toEqual(winner.operation);
      expect(a.operation).toEqual(final.operation);
      expect(b.operation).toEqual(final.operation);
    }
  });

  it('never changes a done operation again', async () => {
    const { operation } = await store.create({ metadata: meta(1) });
    const failed = await store.complete(
      operation.name,
      {
        error: {
          code: Code.FAILED_PRECONDITION,
          message: 'quota',
          details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'QUOTA' }],
        },
      },
      { metadata: meta(90) },
    );
    expect(failed.applied).toBe(true);
    const later = [
      await store.complete(operation.name, { response: { '@type': 'type.googleapis.com/t.R' } }),
      await store.updateMetadata(operation.name, meta(100), {
        emitTime: new Date(Date.now() + 60_000),
        eventId: 'late',
      }),
      await store.requestCancel(operation.name),
    ];
    for (const result of later) expect(result.applied).toBe(false);
    const final = await store.get(operation.name);
    expect(final.operation).toEqual(failed.operation);
    expect(final.operation.error?.details?.[0]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'QUOTA',
    });
    expect(final.operation.metadata).toEqual(meta(90));
    expect(final.doneTime).toBeInstanceOf(Date);
  });

  it('keeps the last metadata when the terminal write carries none', async () => {
    const { operation } = await store.create();
    await store.updateMetadata(operation.name, meta(70), { emitTime: new Date(), eventId: 'e' });
    const done = await store.complete(operation.name, {
      response: { '@type': 'type.googleapis.com/t.R' },
    });
    expect(done.operation.metadata).toEqual(meta(70));
    expect(await codeOf(store.complete('operations/missing-op', {}))).toBe(Code.NOT_FOUND);
  });
});

describe('metadata', () => {
  it('ends at the newest emitTime whatever order updates arrive in', async () => {
    const base = Date.now();
    for (let trial = 0; trial < 5; trial++) {
      const { operation } = await store.create();
      const updates = Array.from({ length: 20 }, (_, i) => ({
        metadata: meta(i),
        emitTime: new Date(base + i * 10),
        eventId: `e${i}`,
      }));
      // Shuffled, some duplicated, half of them concurrently.
      const deliveries = shuffled([...updates, ...updates.slice(0, 7)]);
      const applied = await Promise.all(
        deliveries.map((u) =>
          store.updateMetadata(operation.name, u.metadata, {
            emitTime: u.emitTime,
            eventId: u.eventId,
          }),
        ),
      );
      expect(applied.filter((r) => r.applied).length).toBeGreaterThanOrEqual(1);
      for (const r of applied.filter((r) => r.applied)) expect(r.operation.done).toBe(false);
      expect((await store.get(operation.name)).operation.metadata).toEqual(meta(19));
    }
  });

  it('applies a duplicate of one event once', async () => {
    const { operation } = await store.create();
    const at = { emitTime: new Date(), eventId: 'same' };
    const first = await store.updateMetadata(operation.name, meta(1), at);
    const second = await store.updateMetadata(operation.name, meta(1), at);
    expect([first.applied, second.applied]).toEqual([true, false]);
  });

  it('is NOT_FOUND for an unknown operation and creates nothing', async () => {
    const name = `operations/${id()}`;
    const at = { emitTime: new Date(), eventId: 'x' };
    expect(await codeOf(store.updateMetadata(name, meta(1), at))).toBe(Code.NOT_FOUND);
    expect(await codeOf(store.get(name))).toBe(Code.NOT_FOUND);
  });
});

describe('cancel and delete', () => {
  it('records a cancellation request with its time, once, without finishing the operation', async () => {
    const { operation } = await store.create();
    const before = Date.now();
    const first = await store.requestCancel(operation.name);
    expect(first.applied).toBe(true);
    expect(first.operation.done).toBe(false);
    const requested = (await store.get(operation.name)).cancelRequestTime;
    expect(requested?.getTime()).toBeGreaterThanOrEqual(before - 5);
    const second = await store.requestCancel(operation.name);
    expect(second.applied).toBe(false);
    expect((await store.get(operation.name)).cancelRequestTime).toEqual(requested);
    const cancelled = await store.complete(operation.name, {
      error: { code: Code.CANCELLED, message: 'cancelled' },
    });
    expect(cancelled.operation.error?.code).toBe(1);
    // A cancelled operation whose worker reports its final metadata with the failure.
    const other = (await store.create()).operation.name;
    await store.requestCancel(other);
    const withMetadata = await store.complete(
      other,
      { error: { code: Code.CANCELLED, message: 'cancelled' } },
      { metadata: meta(40) },
    );
    expect(withMetadata.applied).toBe(true);
    expect(withMetadata.operation.metadata).toEqual(meta(40));
    expect((await store.get(operation.name)).cancelRequestTime).toEqual(requested);
    expect(await codeOf(store.requestCancel(`operations/${id()}`))).toBe(Code.NOT_FOUND);
  });

  it('deletes an operation and frees its ID', async () => {
    const opId = id();
    await store.create({ id: opId });
    await store.delete(`operations/${opId}`);
    expect(await codeOf(store.get(`operations/${opId}`))).toBe(Code.NOT_FOUND);
    expect(await codeOf(store.delete(`operations/${opId}`))).toBe(Code.NOT_FOUND);
    await store.create({ id: opId });
  });
});

describe('parents and children', () => {
  it('lists immediate children from the index, paged, never leaking between parents', async () => {
    const a = (await store.create({ id: `${id()}-a` })).operation.name;
    const b = (await store.create({ id: `${id()}-ab` })).operation.name;
    const aChildren = await Promise.all(
      Array.from({ length: 23 }, () => store.create({ parent: a })),
    );
    const bChildren = await Promise.all(
      Array.from({ length: 4 }, () => store.create({ parent: b })),
    );
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await store.listChildren(a, { pageSize: 5, pageToken });
      seen.push(...page.operations.map((r) => r.operation.name));
      for (const r of page.operations) expect(r.parent).toBe(a);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen.sort()).toEqual(aChildren.map((r) => r.operation.name).sort());
    const bPage = await store.listChildren(b, { pageSize: 50, pageToken: '' });
    expect(bPage.operations.map((r) => r.operation.name).sort()).toEqual(
      bChildren.map((r) => r.operation.name).sort(),
    );
    expect(await store.getParent(aChildren[0]?.operation.name as string)).toBe(a);
    expect(await store.getParent(a)).toBeUndefined();
  });

  it('drops a deleted child from its parent listing', async () => {
    const parent = (await store.create()).operation.name;
    const [x, y] = await Promise.all([store.create({ parent }), store.create({ parent })]);
    await store.delete(x?.operation.name as string);
    const page = await store.listChildren(parent, { pageSize: 10, pageToken: '' });
    expect(page.operations.map((r) => r.operation.name)).toEqual([y?.operation.name]);
  });

  it('rejects a page token of another parent', async () => {
    const p1 = (await store.create()).operation.name;
    const p2 = (await store.create()).operation.name;
    await Promise.all([store.create({ parent: p1 }), store.create({ parent: p1 })]);
    const page = await store.listChildren(p1, { pageSize: 1, pageToken: '' });
    expect(page.nextPageToken).not.toBe('');
    expect(
      await codeOf(store.listChildren(p2, { pageSize: 1, pageToken: page.nextPageToken })),
    ).toBe(Code.INVALID_ARGUMENT);
    expect(
      await codeOf(store.listChildren(`operations/${id()}`, { pageSize: 1, pageToken: '' })),
    ).toBe(Code.NOT_FOUND);
  });

  it('traverses the tree to a depth limit', async () => {
    const root = (await store.create()).operation.name;
    const c1 = (await store.create({ parent: root })).operation.name;
    const c2 = (await store.create({ parent: root })).operation.name;
    const g1 = (await store.create({ parent: c1 })).operation.name;
    const gg = (await store.create({ parent: g1 })).operation.name;
    const full = await store.traverse(root, { maxDepth: 10 });
    const byName = new Map(full.childrenOperations.map((n) => [n.operation, n]));
    expect([...byName.keys()].sort()).toEqual([c1, c2].sort());
    expect(byName.get(c1)?.childrenOperations[0]?.operation).toBe(g1);
    expect(byName.get(c1)?.childrenOperations[0]?.childrenOperations[0]?.operation).toBe(gg);
    const shallow = await store.traverse(root, { maxDepth: 1 });
    for (const child of shallow.childrenOperations) expect(child.childrenOperations).toEqual([]);
  });
});

describe('listing', () => {
  it('returns each of 500+ operations exactly once, page by page, with filters', async () => {
    const own = testConfig({ LRO_ROW_KEY_PREFIX: `list-${uniqueSuffix()}/` });
    await ensureTable(own);
    const s = new BigtableOperationStore(own);
    try {
      const created: string[] = [];
      for (let batch = 0; batch < 11; batch++) {
        const records = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            s.create({
              metadata: {
                '@type': `type.googleapis.com/t.${(batch * 50 + i) % 2 ? 'Odd' : 'Even'}`,
              },
            }),
          ),
        );
        created.push(...records.map((r) => r.operation.name));
      }
      const finished = created.slice(0, 120);
      await Promise.all(
        finished.map((name, i) =>
          s.complete(
            name,
            i % 3 === 0
              ? { error: { code: Code.NOT_FOUND, message: 'x' } }
              : { response: { '@type': 'type.googleapis.com/t.R' } },
          ),
        ),
      );

      const all = await listAll(s, '', 37);
      expect(all.seen.map((r) => r.operation.name).sort()).toEqual([...created].sort());
      expect(all.pages).toBeGreaterThanOrEqual(15);

      const done = await listAll(s, 'done', 50);
      expect(done.seen.map((r) => r.operation.name).sort()).toEqual([...finished].sort());
      const running = await listAll(s, 'done = false', 100);
      expect(running.seen).toHaveLength(created.length - finished.length);
      const notFound = await listAll(s, 'error.code = 5', 100);
      expect(notFound.seen).toHaveLength(40);
      expect((await listAll(s, 'error.code = NOT_FOUND AND done', 100)).seen).toHaveLength(40);
      const odd = await listAll(s, 'metadata.@type = "type.googleapis.com/t.Odd"', 100);
      expect(odd.seen).toHaveLength(275);
      const future = await listAll(
        s,
        `create_time > "${new Date(Date.now() + 60_000).toISOString()}"`,
        100,
      );
      expect(future.seen).toHaveLength(0);
      const past = await listAll(
        s,
        `create_time < "${new Date(Date.now() + 60_000).toISOString()}" AND NOT done`,
        500,
      );
      expect(past.seen).toHaveLength(created.length - finished.length);

      // Page size is capped by the API layer; the store honours what it is given.
      const first = await s.list({ filter: '', pageSize: 10, pageToken: '' });
      expect(first.operations).toHaveLength(10);
      // A token is bound to its filter, signed, and cannot be forged.
      expect(
        await codeOf(s.list({ filter: 'done', pageSize: 10, pageToken: first.nextPageToken })),
      ).toBe(Code.INVALID_ARGUMENT);
      const [body, sig] = first.nextPageToken.split('.');
      const forgedBody = Buffer.from(
        JSON.stringify({
          ...JSON.parse(Buffer.from(body as string, 'base64url').toString()),
          k: 'zzz',
        }),
      ).toString('base64url');
      for (const token of [`${forgedBody}.${sig}`, 'garbage', `${body}.`, '.']) {
        expect(await codeOf(s.list({ filter: '', pageSize: 10, pageToken: token }))).toBe(
          Code.INVALID_ARGUMENT,
        );
      }
      expect(await codeOf(s.list({ filter: 'done = maybe', pageSize: 10, pageToken: '' }))).toBe(
        Code.INVALID_ARGUMENT,
      );
    } finally {
      await s.close();
    }
  });

  it('keeps services with different row-key prefixes apart in one table', async () => {
    const one = new BigtableOperationStore(
      testConfig({ LRO_BIGTABLE_TABLE: config.bigtable.table, LRO_ROW_KEY_PREFIX: 'svc-one/' }),
    );
    const two = new BigtableOperationStore(
      testConfig({ LRO_BIGTABLE_TABLE: config.bigtable.table, LRO_ROW_KEY_PREFIX: 'svc-two/' }),
    );
    try {
      const a = await one.create({ id: 'shared-id' });
      const b = await two.create({ id: 'shared-id', metadata: meta(2) });
      expect(a.operation.name).toBe(b.operation.name);
      expect((await one.get('operations/shared-id')).operation.metadata).toBeUndefined();
      const listed = await one.list({ filter: '', pageSize: 100, pageToken: '' });
      expect(listed.operations.map((r) => r.operation.name)).toEqual(['operations/shared-id']);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});

describe('retention', () => {
  it('hides finished operations once retention has passed, never running ones', async () => {
    let now = Date.now();
    const own = testConfig({
      LRO_BIGTABLE_TABLE: config.bigtable.table,
      LRO_RETENTION: '60s',
      LRO_ROW_KEY_PREFIX: `ret-${uniqueSuffix()}/`,
    });
    const s = new BigtableOperationStore(own, () => now);
    try {
      const finished = (await s.create({ id: 'finished' })).operation.name;
      const running = (await s.create({ id: 'running' })).operation.name;
      await s.complete(finished, { response: { '@type': 'type.googleapis.com/t.R' } });
      now += 59_000;
      expect((await s.get(finished)).operation.done).toBe(true);
      now += 2_000;
      expect(await codeOf(s.get(finished))).toBe(Code.NOT_FOUND);
      expect((await s.get(running)).operation.done).toBe(false);
      const listed = await s.list({ filter: '', pageSize: 10, pageToken: '' });
      expect(listed.operations.map((r) => r.operation.name)).toEqual([running]);
      // The ID of an expired operation can be used again.
      expect((await s.create({ id: 'finished' })).operation.done).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('sets a max-age GC rule equal to the retention on every family', async () => {
    const rules = await familyGcRules(config);
    expect(Object.keys(rules).sort()).toEqual(['h', 'i', 's']);
    for (const rule of Object.values(rules))
      expect(rule.maxAgeSeconds).toBe(config.retentionMs / 1000);
  });
});
