/**
 * The instance module (shared/service/runtime/instance.ts): each function's services are built
 * on first use from one config, over one operation store, one dead-letter store (on the same
 * Bigtable client) and one Pub/Sub client, and closing the instance closes what every function
 * used.
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

describe('a function instance', () => {
  it('loads its config once, on first use, and builds each function its services once', async () => {
    let loads = 0;
    const instance = new Instance(() => {
      loads++;
      return config;
    });
    expect(loads).toBe(0);
    try {
      const api = instance.api();
      const subscriber = instance.subscriber();
      const sweeper = instance.sweeper();
      expect(instance.api()).toBe(api);
      expect(instance.subscriber()).toBe(subscriber);
      expect(instance.sweeper()).toBe(sweeper);
      expect(loads).toBe(1);
    } finally {
      await instance.close();
    }
  });

  it('gives every function one operation store, one dead-letter store and one Pub/Sub client', async () => {
    const instance = new Instance(() => config);
    try {
      const api = instance.api();
      const subscriber = instance.subscriber();
      const sweeper = instance.sweeper();
      expect(subscriber.store).toBe(api.store);
      expect(sweeper.store).toBe(api.store);
      expect(subscriber.deadLetters).toBe(api.deadLetters);
      expect(sweeper.deadLetters).toBe(api.deadLetters);
      expect(subscriber.messaging).toBe(api.messaging);
      expect(sweeper.messaging).toBe(api.messaging);
      expect(subscriber.topics).toEqual({
        notifications: config.topics.notifications,
        wakeups: config.topics.wakeups,
        deadLetter: config.topics.deadLetter,
      });
      expect(sweeper.topics).toEqual({
        notifications: config.topics.notifications,
        wakeups: config.topics.wakeups,
        events: config.topics.events,
      });
    } finally {
      await instance.close();
    }
  });

  it('closes the Bigtable client of the API, its dead-letter store included, on close', async () => {
    const instance = new Instance(() => config);
    const api = instance.api();
    await api.store.create({ id: 'instance-open' });
    expect(
      await failure(api.deadLetters?.get('8000000000000-absent') ?? Promise.resolve()),
    ).toMatch(/not found/);
    await instance.close();
    expect(await failure(api.store.get('operations/instance-open'))).toMatch(/closed/);
    expect(
      await failure(api.deadLetters?.get('8000000000000-absent') ?? Promise.resolve()),
    ).toMatch(/closed/);
  });
});
