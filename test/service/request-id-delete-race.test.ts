/**
 * A create retried with its request ID (AIP-155) while its operation is being deleted, over HTTP
 * through the operations function, many times with varying overlap. Every outcome must be one that
 * the two requests could have produced one after the other:
 * - the retry came first: it answers with the operation the delete then removes, and afterwards no
 *   operation has the name;
 * - the delete came first: the request ID was free again, the retry created a new operation, and
 *   the request ID names it (a further retry answers with the same operation, and only it).
 * Never an operation that outlives the delete that answered 200, nor one that its request ID does
 * not name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTable } from '../../shared/service/store/bigtable/access.js';
import { uniqueSuffix } from '../support/env.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

let s: OperationsStack;
let bigtable: ReturnType<typeof openTable>;

beforeAll(async () => {
  s = await startOperationsStack();
  bigtable = openTable(s.config);
});

afterAll(async () => {
  await bigtable?.bigtable.close();
  await s?.stop();
});

const TRIALS = 40;

/** The operation ID that the request-ID index binds `requestId` to, if any. */
async function boundTo(requestId: string): Promise<string | undefined> {
  const [rows] = await bigtable.table.getRows({
    keys: [`${s.config.bigtable.rowKeyPrefix}r/${requestId}`],
  });
  const row = rows[0] as unknown as
    | { data: Record<string, Record<string, { value: string }[]>> }
    | undefined;
  return row?.data.i?.o?.[0]?.value;
}

async function createTimeOf(name: string): Promise<number | undefined> {
  try {
    return (await s.store.get(name)).createTime.getTime();
  } catch {
    return undefined;
  }
}

interface Outcome {
  retryFirst: number;
  deleteFirst: number;
  violations: string[];
}

async function race(callerChosenId: boolean): Promise<Outcome> {
  const outcome: Outcome = { retryFirst: 0, deleteFirst: 0, violations: [] };
  for (let trial = 0; trial < TRIALS; trial++) {
    const requestId = `race-${uniqueSuffix()}`;
    const body = {
      requestId,
      ...(callerChosenId ? { operationId: `race-${uniqueSuffix()}` } : {}),
    };
    const created = await call(s.url, 'POST', '/v1/operations', body);
    expect(created.status).toBe(200);
    const name = created.body.name as string;
    const originalCreateTime = await createTimeOf(name);
    // The retry starts 0–14 ms after the delete, so that it meets every step of the delete.
    const delay = trial % 15;
    const [deleted, retried] = await Promise.all([
      call(s.url, 'DELETE', `/v1/${name}`),
      new Promise((r) => setTimeout(r, delay)).then(() =>
        call(s.url, 'POST', '/v1/operations', body),
      ),
    ]);
    const fail = (what: string) => outcome.violations.push(`trial ${trial}: ${what}`);
    if (deleted.status !== 200) fail(`delete answered ${deleted.status}`);
    if (retried.status !== 200) {
      fail(`retry answered ${retried.status} ${JSON.stringify(retried.body)}`);
      continue;
    }
    const retriedName = retried.body.name as string;
    const after = await createTimeOf(retriedName);
    const binding = await boundTo(requestId);
    if (after === undefined) {
      // The retry came first: nothing it made or answered with survives.
      outcome.retryFirst++;
      if (retriedName !== name) fail(`retry answered ${retriedName}, which does not exist`);
      if (binding !== undefined) fail(`request ID still bound to ${binding}`);
      continue;
    }
    // The delete came first: a new operation, named by the request ID.
    outcome.deleteFirst++;
    if (retriedName === name && after === originalCreateTime) {
      fail(`${name} survived its delete`);
    }
    if (binding !== retriedName.slice('operations/'.length)) {
      fail(`${retriedName} exists but the request ID is bound to ${binding}`);
    }
    const again = await call(s.url, 'POST', '/v1/operations', body);
    if (again.body.name !== retriedName || (await createTimeOf(retriedName)) !== after) {
      fail(`a further retry answered ${again.body.name}, not ${retriedName}`);
    }
  }
  return outcome;
}

describe('a create retried while its operation is being deleted', () => {
  it(`with a caller-chosen ID: ${TRIALS} trials, each one of the two orders`, async () => {
    const outcome = await race(true);
    expect(outcome.violations).toEqual([]);
    expect(outcome.retryFirst + outcome.deleteFirst).toBe(TRIALS);
  }, 180_000);

  it(`with a generated ID: ${TRIALS} trials, each one of the two orders`, async () => {
    const outcome = await race(false);
    expect(outcome.violations).toEqual([]);
    expect(outcome.retryFirst + outcome.deleteFirst).toBe(TRIALS);
  }, 180_000);
});
