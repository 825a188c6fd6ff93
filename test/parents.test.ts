/**
 * Deleting a parent: refused while it has children (FAILED_PRECONDITION), race-free against
 * child creates running at the same time, and the `parent` filter always agrees with /children.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type OperationsStack, startOperationsStack } from './support/operations-stack.js';

let s: OperationsStack;

beforeAll(async () => {
  s = await startOperationsStack();
});

afterAll(async () => {
  await s?.stop();
});

async function namesOf(path: string): Promise<string[]> {
  const names: string[] = [];
  let token = '';
  do {
    const sep = path.includes('?') ? '&' : '?';
    const reply = await call(
      s.url,
      'GET',
      `${path}${sep}pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
    );
    if (reply.status === 404) return [];
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    names.push(...reply.body.operations.map((o: { name: string }) => o.name));
    token = reply.body.nextPageToken;
  } while (token);
  return names.sort();
}

const byFilter = (parent: string) =>
  namesOf(`/v1/operations?filter=${encodeURIComponent(`parent="${parent}"`)}`);
const byChildren = (parent: string) => namesOf(`/v1/${parent}/children`);

describe('deleting a parent', () => {
  it('is refused with 400 FAILED_PRECONDITION while it has children, done or not', async () => {
    const parent = (await call(s.url, 'POST', '/v1/operations', { operationId: 'parent-a' })).body;
    const running = (await call(s.url, 'POST', '/v1/operations', { parent: parent.name })).body;
    const done = (await call(s.url, 'POST', '/v1/operations', { parent: parent.name })).body;
    await s.finish(done.name, { response: { '@type': 'type.googleapis.com/test.R' } });

    const refused = await call(s.url, 'DELETE', `/v1/${parent.name}`);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ status: 'FAILED_PRECONDITION' });
    expect(refused.body.error.message).toContain('2 child operations');
    expect((await call(s.url, 'GET', `/v1/${parent.name}`)).status).toBe(200);
    // The parent is intact: children can still be created under it.
    const third = await call(s.url, 'POST', '/v1/operations', { parent: parent.name });
    expect(third.status).toBe(200);

    for (const child of [running.name, done.name, third.body.name]) {
      expect((await call(s.url, 'DELETE', `/v1/${child}`)).status).toBe(200);
    }
    expect((await call(s.url, 'DELETE', `/v1/${parent.name}`)).status).toBe(200);
    expect(await byFilter(parent.name)).toEqual([]);

    // Re-created, the parent has no children, by either listing.
    expect((await call(s.url, 'POST', '/v1/operations', { operationId: 'parent-a' })).status).toBe(
      200,
    );
    expect(await byChildren(parent.name)).toEqual([]);
    expect(await byFilter(parent.name)).toEqual([]);
  });

  it('racing child creates: never a child of a deleted parent, never a foreign child under a re-created one', async () => {
    const trials = 25;
    let deleted = 0;
    let refused = 0;
    for (let trial = 0; trial < trials; trial++) {
      const parent = `operations/race-${trial}`;
      expect(
        (await call(s.url, 'POST', '/v1/operations', { operationId: `race-${trial}` })).status,
      ).toBe(200);
      // Creates and the delete start at random moments within a few milliseconds of each other.
      // The delete takes more requests than a create, so it gets a head start.
      const later = <T>(ms: number, fn: () => Promise<T>) =>
        new Promise((r) => setTimeout(r, Math.random() * ms)).then(fn);
      const creates = Array.from({ length: 15 }, (_, i) =>
        later(60, () =>
          call(s.url, 'POST', '/v1/operations', { operationId: `race-${trial}-c${i}`, parent }),
        ),
      );
      const removal = later(10, () => call(s.url, 'DELETE', `/v1/${parent}`));
      const [replies, removed] = await Promise.all([Promise.all(creates), removal]);
      const createdChildren = replies
        .filter((r) => r.status === 200)
        .map((r) => r.body.name)
        .sort();
      for (const r of replies) expect([200, 404, 409], JSON.stringify(r.body)).toContain(r.status);

      if (removed.status === 200) {
        deleted++;
        // A successful delete means no child creation succeeded before it, and none after.
        expect(createdChildren).toEqual([]);
        expect(await byFilter(parent)).toEqual([]);
        for (let i = 0; i < 15; i++) {
          expect((await call(s.url, 'GET', `/v1/operations/race-${trial}-c${i}`)).status).toBe(404);
        }
        // Re-created: no child of the old one shows up under it.
        expect(
          (await call(s.url, 'POST', '/v1/operations', { operationId: `race-${trial}` })).status,
        ).toBe(200);
        expect(await byChildren(parent)).toEqual([]);
        expect(await byFilter(parent)).toEqual([]);
      } else {
        refused++;
        expect(removed.status, JSON.stringify(removed.body)).toBe(400);
        expect(createdChildren.length).toBeGreaterThan(0);
        // Every created child is listed by both, and nothing else.
        expect(await byChildren(parent)).toEqual(createdChildren);
        expect(await byFilter(parent)).toEqual(createdChildren);
        for (const child of createdChildren) {
          expect((await call(s.url, 'GET', `/v1/${child}:getParent`)).body).toEqual({ parent });
        }
      }
    }
    // How the races went, for whoever reads a failure.
    expect({ deleted, refused }).toEqual({ deleted, refused: trials - deleted });
  }, 240_000);
});
