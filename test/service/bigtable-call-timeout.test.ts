/**
 * Every Bigtable call of the stores carries the per-call deadline (defaults.bigtableCallTimeoutMs),
 * so that a stalled Bigtable fails a request or a delivery instead of holding it for the client
 * library's own limits (a minute and more for a mutate).
 *
 * - Each call site: every call goes through the access module's wrapper, which passes the
 *   deadline (test/bigtable-access.test.ts checks that nothing else calls Bigtable).
 * - In effect: with Bigtable frozen (SIGSTOP), every store method fails UNAVAILABLE once its
 *   first call's deadline passed, none hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../shared/sdk/defaults.js';
import { Code, LroError } from '../../shared/sdk/errors.js';
import type { Config } from '../../shared/service/runtime/config.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import {
  BigtableOperationStore,
  ensureTable,
} from '../../shared/service/store/bigtable/operation-store.js';
import { type PrivateBigtable, startPrivateBigtable } from '../faults/support.js';
import { testConfig } from '../support/env.js';

describe('Bigtable frozen', () => {
  let bigtable: PrivateBigtable;
  let config: Config;
  let store: BigtableOperationStore;
  let deadLetters: DeadLetterStore;

  beforeAll(async () => {
    bigtable = await startPrivateBigtable();
    config = testConfig({ BIGTABLE_EMULATOR_HOST: bigtable.host });
    await ensureTable(config);
    store = new BigtableOperationStore(config);
    deadLetters = new DeadLetterStore(config);
    // Connections open before the freeze, as in a running instance.
    await store.create({ id: 'parent' });
    await deadLetters.lastFailure(Buffer.from('x'));
  });

  afterAll(async () => {
    bigtable?.resume();
    await Promise.allSettled([store?.close(), deadLetters?.close()]);
    await bigtable?.stop();
  });

  it('fails every store method UNAVAILABLE instead of hanging', async () => {
    const data = Buffer.from('{}');
    const entry = {
      id: '8000000000000-m1',
      reason: 'r',
      data,
      attributes: {},
      deadLetterTime: new Date(),
    };
    const calls: Record<string, () => Promise<unknown>> = {
      create: () => store.create({ id: 'child', parent: 'operations/parent' }),
      get: () => store.get('operations/parent'),
      list: () => store.list({ filter: '', pageSize: 10, pageToken: '' }),
      listChildren: () => store.listChildren('operations/parent', { pageSize: 10, pageToken: '' }),
      traverse: () => store.traverse('operations/parent', { maxDepth: 3 }),
      getParent: () => store.getParent('operations/parent'),
      delete: () => store.delete('operations/parent'),
      requestCancel: () => store.requestCancel('operations/parent'),
      complete: () => store.complete('operations/parent', {}),
      updateMetadata: () =>
        store.updateMetadata(
          'operations/parent',
          { '@type': 'type.googleapis.com/t.M' },
          { emitTime: new Date(), eventId: 'e1' },
        ),
      heartbeat: () => store.heartbeat('operations/parent', { time: new Date() }),
      listDue: () => store.listDue(new Date(), 10),
      expire: () => store.expire('operations/parent', new Date()),
      reschedule: () =>
        store.reschedule(
          { key: 'd/x', operation: 'operations/parent', due: new Date() },
          new Date(Date.now() + 60_000),
        ),
      putDeadLetter: () => deadLetters.put(entry),
      getDeadLetter: () => deadLetters.get(entry.id),
      listDeadLetters: () => deadLetters.list({ pageSize: 10, pageToken: '' }),
      replay: () => deadLetters.replay(entry.id, async () => undefined),
      lastFailure: () => deadLetters.lastFailure(data),
      forgetFailure: () => deadLetters.forgetFailure(data),
    };
    bigtable.freeze();
    try {
      // A call without the deadline waits for the library's own (a minute and more for a
      // mutate): well past this, which leaves the deadline ample room on a loaded machine.
      const hangMs = defaults.bigtableCallTimeoutMs * 3;
      const outcomes = await Promise.all(
        Object.entries(calls).map(async ([name, call]) => {
          let timer: NodeJS.Timeout | undefined;
          const hang = new Promise<string>((resolve) => {
            timer = setTimeout(() => resolve('still waiting'), hangMs);
          });
          const settled = call().then(
            () => 'resolved',
            (err: unknown) =>
              err instanceof LroError ? Code[err.code] : `threw ${String(err).slice(0, 80)}`,
          );
          const outcome = await Promise.race([settled, hang]);
          clearTimeout(timer);
          return [name, outcome] as const;
        }),
      );
      expect(Object.fromEntries(outcomes)).toEqual(
        Object.fromEntries(Object.keys(calls).map((name) => [name, 'UNAVAILABLE'])),
      );
    } finally {
      bigtable.resume();
    }
  }, 120_000);
});
