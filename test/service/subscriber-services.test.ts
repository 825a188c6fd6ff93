/**
 * The subscriber instance's clients: the operation store and the dead-letter store share one
 * Bigtable client, and closing the instance (its shutdown hook) closes it, so no
 * client is left open when the instance stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/service/runtime/config.js';
import { Instance } from '../../shared/service/runtime/instance.js';
import { deleteTable, ensureTable } from '../../shared/service/store/bigtable/operation-store.js';
import { testConfig } from '../support/env.js';
import { failure } from '../support/errors.js';

let config: Config;

beforeAll(async () => {
  config = testConfig();
  await ensureTable(config);
});

afterAll(async () => {
  await deleteTable(config);
});

describe('subscriber services', () => {
  it('close every Bigtable client, the dead-letter store included', async () => {
    const instance = new Instance(() => config);
    const services = instance.subscriber();
    // Both stores answer while open (a dead letter that does not exist: NOT_FOUND).
    await services.store.create({ id: 'services-open' });
    expect(await failure(services.deadLetters.get('8000000000000-absent'))).toMatch(/not found/);
    await instance.close();
    expect(await failure(services.store.get('operations/services-open'))).toMatch(/closed/);
    expect(await failure(services.deadLetters.get('8000000000000-absent'))).toMatch(/closed/);
    expect(
      await failure(
        services.failures?.rememberFailure(Buffer.from('x'), { code: 14, message: 'e' }) ??
          Promise.resolve(),
      ),
    ).toMatch(/closed/);
  });
});
