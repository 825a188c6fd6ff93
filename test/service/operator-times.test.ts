/**
 * Operator views through the API: every operation's times (the `/times` resource and
 * `view=FULL` pages), `orderBy=create_time desc|asc` from the time-ordered index (pagination
 * across equal create times and deletions between pages, the filter applied, children), and
 * name-prefix searches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTable } from '../../shared/service/store/bigtable/access.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;
const meta = (percent: number) => ({ '@type': 'type.googleapis.com/test.Progress', percent });
const unique = () => Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

/** Every page of a list request; the names in the order listed. */
async function listAll(path: string, query: Record<string, string>, pageSize: number) {
  const names: string[] = [];
  let pageToken = '';
  let pages = 0;
  do {
    const params = new URLSearchParams({ ...query, pageSize: String(pageSize), pageToken });
    const reply = await call(s.url, 'GET', `${path}?${params}`);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body.operations.length).toBeLessThanOrEqual(pageSize);
    names.push(...reply.body.operations.map((op: { name: string }) => op.name));
    pageToken = reply.body.nextPageToken;
    pages++;
  } while (pageToken);
  return { names, pages };
}

/** Index rows of the time-ordered index whose key ends with the ID. */
async function timeIndexRows(id: string) {
  const { bigtable, table } = openTable(s.config);
  try {
    const prefix = s.config.bigtable.rowKeyPrefix;
    const found: string[] = [];
    for (const part of ['ta/', 'td/', 'ka/', 'kd/']) {
      const [rows] = await table.getRows({ prefix: prefix + part });
      for (const row of rows) if (row.id.endsWith(`/${id}`)) found.push(row.id);
    }
    return found;
  } finally {
    await bigtable.close();
  }
}

describe('times', () => {
  it('answers every time of one operation at /times, without changing the Operation JSON', async () => {
    const id = `times-${unique()}`;
    const deadline = new Date(Date.now() + 3_600_000).toISOString();
    const before = Date.now();
    const created = await call(s.url, 'POST', '/v1/operations', {
      operationId: id,
      metadata: meta(0),
      deadline,
      heartbeatTimeout: '90s',
    });
    expect(created.status).toBe(200);
    expect(Object.keys(created.body).sort()).toEqual(['done', 'metadata', 'name']);

    let times = (await call(s.url, 'GET', `/v1/operations/${id}/times`)).body;
    expect(times).toMatchObject({
      name: `operations/${id}`,
      deadline,
      heartbeatTimeout: '90s',
    });
    expect(Date.parse(times.createTime)).toBeGreaterThanOrEqual(before - 1);
    expect(times.updateTime).toBe(times.createTime);
    expect(times.endTime).toBeUndefined();
    expect(times.lastHeartbeatTime).toBeUndefined();
    expect(times.cancelRequestTime).toBeUndefined();

    await s.store.heartbeat(`operations/${id}`, { time: new Date(Date.now() + 5) });
    expect((await call(s.url, 'POST', `/v1/operations/${id}:cancel`, {})).status).toBe(200);
    times = (await call(s.url, 'GET', `/v1/operations/${id}/times`)).body;
    expect(Date.parse(times.lastHeartbeatTime)).toBeGreaterThanOrEqual(
      Date.parse(times.createTime),
    );
    expect(Date.parse(times.cancelRequestTime)).toBeGreaterThanOrEqual(
      Date.parse(times.createTime),
    );
    expect(times.updateTime).toBe(times.cancelRequestTime);

    await s.finish(`operations/${id}`, { error: { code: 1, message: 'cancelled' } });
    times = (await call(s.url, 'GET', `/v1/operations/${id}/times`)).body;
    expect(Date.parse(times.endTime)).toBeGreaterThanOrEqual(Date.parse(times.cancelRequestTime));
    expect(times.updateTime).toBe(times.endTime);
    expect(Date.parse(times.expireTime) - Date.parse(times.endTime)).toBe(s.config.retentionMs);
    expect((await call(s.url, 'GET', `/v1/operations/${id}`)).body).not.toHaveProperty('endTime');
  });

  it('answers NOT_FOUND for the times of a missing operation', async () => {
    const reply = await call(s.url, 'GET', '/v1/operations/nobody-here/times');
    expect(reply.status).toBe(404);
    expect(reply.body.error.status).toBe('NOT_FOUND');
  });

  it('adds a times array beside the operations of a list or children page with view=FULL only', async () => {
    const parent = `full-${unique()}`;
    await call(s.url, 'POST', '/v1/operations', { operationId: parent });
    for (const n of [1, 2, 3]) {
      await call(s.url, 'POST', '/v1/operations', {
        operationId: `${parent}-c${n}`,
        parent: `operations/${parent}`,
      });
    }
    await s.finish(`operations/${parent}-c2`, { response: meta(100) });
    for (const path of [`/v1/operations/${parent}/children`, '/v1/operations']) {
      const basic = await call(s.url, 'GET', `${path}?pageSize=1000`);
      expect(basic.body).not.toHaveProperty('times');
      const full = await call(s.url, 'GET', `${path}?view=FULL&pageSize=1000`);
      expect(full.status).toBe(200);
      expect(full.body.times.map((t: { name: string }) => t.name)).toEqual(
        full.body.operations.map((op: { name: string }) => op.name),
      );
      const done = full.body.times.find((t: { name: string }) => t.name.endsWith('-c2'));
      expect(done.endTime).toBeDefined();
      expect(done.parent).toBe(`operations/${parent}`);
    }
    const bad = await call(s.url, 'GET', '/v1/operations?view=EVERYTHING');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('view');
  });
});

describe('orderBy create_time', () => {
  it('lists newest first and oldest first across equal create times and deletions between pages', async () => {
    const tag = `order-${unique()}`;
    const typeUrl = `type.googleapis.com/test.${tag.replace('-', '')}`;
    const base = Date.now() - 10_000;
    // Three operations per millisecond, in four milliseconds, created in a shuffled order.
    const expected: { id: string; ms: number }[] = [];
    for (let t = 0; t < 4; t++) {
      for (const letter of ['c', 'a', 'b'])
        expected.push({ id: `${tag}-${t}${letter}`, ms: base + t });
    }
    for (const { id, ms } of [...expected].sort(() => Math.random() - 0.5)) {
      const clocked = new BigtableOperationStore(s.config, () => ms);
      await clocked.create({ id, metadata: { '@type': typeUrl } });
      await clocked.close();
    }
    const filter = `name = "operations/${tag}-*"`;
    const newest = [...expected].sort((a, b) => b.ms - a.ms || (a.id < b.id ? -1 : 1));
    const oldest = [...expected].sort((a, b) => a.ms - b.ms || (a.id < b.id ? -1 : 1));
    const names = (list: { id: string }[]) => list.map((e) => `operations/${e.id}`);

    // The index serves a filter that does not narrow the name range (metadata type).
    const typed = `metadata.@type = "${typeUrl}"`;
    for (const filterText of [filter, typed, `${typed} AND ${filter}`]) {
      for (const pageSize of [1, 2, 5]) {
        const desc = await listAll(
          '/v1/operations',
          { filter: filterText, orderBy: 'create_time desc' },
          pageSize,
        );
        expect(desc.names).toEqual(names(newest));
        const asc = await listAll(
          '/v1/operations',
          { filter: filterText, orderBy: 'create_time asc' },
          pageSize,
        );
        expect(asc.names).toEqual(names(oldest));
      }
    }

    // From the index alone (no name range): the newest operations of the table are these.
    const all = await listAll('/v1/operations', { orderBy: 'create_time desc' }, 4);
    const ours = all.names.filter((n) => n.startsWith(`operations/${tag}-`));
    expect(ours).toEqual(names(newest));

    // Deletions between pages: nothing repeats, nothing left is skipped.
    const params = new URLSearchParams({
      orderBy: 'create_time desc',
      pageSize: '4',
      filter: typed,
    });
    const first = await call(s.url, 'GET', `/v1/operations?${params}`);
    const firstNames: string[] = first.body.operations.map((op: { name: string }) => op.name);
    const ourFirst = firstNames.filter((n) => n.startsWith(`operations/${tag}-`));
    expect(ourFirst.length).toBeGreaterThan(0);
    // Delete the last one listed, and the two that come next.
    const lastShown = ourFirst[ourFirst.length - 1] as string;
    const at = names(newest).indexOf(lastShown);
    const removed = names(newest).slice(at, at + 3);
    for (const name of removed) {
      expect((await call(s.url, 'DELETE', `/v1/${name}`)).status).toBe(200);
    }
    const rest: string[] = [];
    let pageToken: string = first.body.nextPageToken;
    while (pageToken) {
      params.set('pageToken', pageToken);
      const page = await call(s.url, 'GET', `/v1/operations?${params}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      rest.push(...page.body.operations.map((op: { name: string }) => op.name));
      pageToken = page.body.nextPageToken;
    }
    const seen = [...ourFirst, ...rest.filter((n) => n.startsWith(`operations/${tag}-`))];
    expect(seen).toEqual(names(newest).filter((n) => n === lastShown || !removed.includes(n)));
    // Deleting an operation removes its index entries.
    expect(await timeIndexRows(removed[1]?.slice('operations/'.length) as string)).toEqual([]);
  });

  it('orders children newest first from their own index, and marks the entries of ended operations to expire', async () => {
    const parent = `kids-${unique()}`;
    await call(s.url, 'POST', '/v1/operations', { operationId: parent });
    const base = Date.now() - 5_000;
    for (const [n, ms] of [
      [1, base],
      [2, base + 2],
      [3, base + 1],
    ] as const) {
      const clocked = new BigtableOperationStore(s.config, () => ms);
      await clocked.create({ id: `${parent}-${n}`, parent: `operations/${parent}` });
      await clocked.close();
    }
    const desc = await listAll(
      `/v1/operations/${parent}/children`,
      { orderBy: 'create_time desc' },
      2,
    );
    expect(desc.names).toEqual([2, 3, 1].map((n) => `operations/${parent}-${n}`));
    const asc = await listAll(`/v1/operations/${parent}/children`, { orderBy: 'create_time' }, 1);
    expect(asc.names).toEqual([1, 3, 2].map((n) => `operations/${parent}-${n}`));
    expect(await timeIndexRows(`${parent}-1`)).toHaveLength(4);

    // Ended: every entry of it carries the completion time, so the max-age GC removes it.
    await s.finish(`operations/${parent}-1`, { response: meta(100) });
    const { bigtable, table } = openTable(s.config);
    try {
      for (const key of await timeIndexRows(`${parent}-1`)) {
        const [rows] = await table.getRows({ keys: [key] });
        const versions = rows[0]?.data.i.t as { timestamp: string }[];
        expect(versions).toHaveLength(1);
        expect(Number(versions[0]?.timestamp) / 1000).toBeLessThanOrEqual(Date.now());
      }
    } finally {
      await bigtable.close();
    }
  });

  it('refuses a bad orderBy, and a page token of another order', async () => {
    for (const orderBy of ['update_time desc', 'create_time sideways', 'create_time desc name']) {
      const reply = await call(
        s.url,
        'GET',
        `/v1/operations?orderBy=${encodeURIComponent(orderBy)}`,
      );
      expect(reply.status).toBe(400);
      expect(reply.body.error.message).toContain('orderBy');
    }
    for (let n = 0; n < 3; n++) await call(s.url, 'POST', '/v1/operations', {});
    const first = await call(s.url, 'GET', '/v1/operations?orderBy=create_time%20desc&pageSize=1');
    expect(first.body.nextPageToken).not.toBe('');
    const token = encodeURIComponent(first.body.nextPageToken);
    const other = await call(
      s.url,
      'GET',
      `/v1/operations?orderBy=create_time%20asc&pageSize=1&pageToken=${token}`,
    );
    expect(other.status).toBe(400);
    const byName = await call(s.url, 'GET', `/v1/operations?pageSize=1&pageToken=${token}`);
    expect(byName.status).toBe(400);
  });
});

describe('name prefix', () => {
  it('lists the operations whose name starts with a prefix, by name or by create time', async () => {
    const tag = `pfx${unique()}`;
    for (const suffix of ['b', 'a', 'c']) {
      await call(s.url, 'POST', '/v1/operations', { operationId: `${tag}-${suffix}` });
    }
    await call(s.url, 'POST', '/v1/operations', { operationId: `${tag}x` });
    const byName = await listAll('/v1/operations', { filter: `name = "${tag}-*"` }, 2);
    expect(byName.names).toEqual(['a', 'b', 'c'].map((x) => `operations/${tag}-${x}`));
    const newest = await listAll(
      '/v1/operations',
      { filter: `name = "operations/${tag}-*"`, orderBy: 'create_time desc' },
      2,
    );
    expect(newest.names).toEqual(['c', 'a', 'b'].map((x) => `operations/${tag}-${x}`));
    const counted = await call(
      s.url,
      'GET',
      `/v1/operations?pageSize=1&showTotalSize=true&filter=${encodeURIComponent(`name = "${tag}-*"`)}`,
    );
    expect(counted.body).toMatchObject({ totalSize: 3 });
    expect(counted.body.operations).toHaveLength(1);
    expect(counted.body).not.toHaveProperty('totalSizeCapped');
    expect((await call(s.url, 'GET', '/v1/operations?pageSize=1')).body).not.toHaveProperty(
      'totalSize',
    );
    const exact = await listAll('/v1/operations', { filter: `name = "operations/${tag}-a"` }, 10);
    expect(exact.names).toEqual([`operations/${tag}-a`]);
  });
});
