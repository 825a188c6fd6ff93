/**
 * Fault: Bigtable stops answering (its emulator frozen with SIGSTOP) for several seconds while
 * operations finish and callers wait, then comes back (SIGCONT). Deliveries that hit the frozen
 * store fail or time out and Pub/Sub delivers them again; waits outlive the outage. In the end no
 * event is lost, every wait returns its operation done, and valid requests get no 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../../shared/sdk/model.js';
import { OperationReporter } from '../../shared/sdk/reporter.js';
import {
  api,
  createOperation,
  expectedEnd,
  type FaultStack,
  matchesEnd,
  type PrivateBigtable,
  progress,
  result,
  startFaultStack,
  startPrivateBigtable,
  UnorderedMessaging,
} from './support.js';

const OPERATIONS = 40;
const FROZEN_MS = 6_000;

let bigtable: PrivateBigtable;
let s: FaultStack;

beforeAll(async () => {
  bigtable = await startPrivateBigtable();
  s = await startFaultStack({
    env: { BIGTABLE_EMULATOR_HOST: bigtable.host, LRO_WAIT_TIMEOUT_MAX: '120s' },
  });
});

afterAll(async () => {
  bigtable?.resume();
  await s?.stop();
  await bigtable?.stop();
});

describe('Bigtable frozen under load', () => {
  it('loses no event, and waits return once it is back', async () => {
    const workerMessaging = new UnorderedMessaging(s.config);
    const reporters: OperationReporter[] = [];
    try {
      const operations: Operation[] = [];
      for (let i = 0; i < OPERATIONS; i++) {
        operations.push(await createOperation(s.api.url, progress(0)));
      }
      const names = operations.map((op) => op.name);
      for (const name of names) {
        reporters.push(
          new OperationReporter({
            operation: name,
            messaging: workerMessaging,
            topics: { events: s.config.topics.events, notifications: false },
          }),
        );
      }
      // Callers wait on every operation, through the outage.
      const waits = names.map((name) =>
        api(s.api.url, 'POST', `/v1/${name}:wait`, { timeout: '90s' }, 120_000),
      );
      await Promise.all(reporters.map((r) => r.progress(progress(1))));

      bigtable.freeze();
      const frozenAt = Date.now();
      try {
        // Workers keep reporting while Bigtable is away: Pub/Sub takes the events.
        await Promise.all(
          reporters.map(async (reporter, i) => {
            await reporter.progress(progress(2));
            const end = expectedEnd(i, reporter.operation, 2);
            if (end.error) await reporter.fail(end.error);
            else await reporter.succeed(result(`value of ${i}`));
          }),
        );
        await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + FROZEN_MS - Date.now())));
      } finally {
        bigtable.resume();
      }

      const replies = await Promise.all(waits);
      for (const [i, reply] of replies.entries()) {
        expect(reply.status, reply.text).toBe(200);
        const op = reply.json as Operation;
        expect(op.done, `${op.name} returned before it was done`).toBe(true);
        expect(matchesEnd(op, expectedEnd(i, names[i] as string, 2))).toBe(true);
      }
      // Bigtable holds the same: every event applied, none lost.
      for (const [i, name] of names.entries()) {
        const reply = await api(s.api.url, 'GET', `/v1/${name}`);
        expect(reply.status, reply.text).toBe(200);
        expect(matchesEnd(reply.json as Operation, expectedEnd(i, name, 2))).toBe(true);
      }
      const listed = await api(s.api.url, 'GET', '/v1/operations?filter=done&pageSize=1000');
      expect(listed.status).toBe(200);
      expect((listed.json as { operations: Operation[] }).operations).toHaveLength(OPERATIONS);
    } finally {
      await Promise.allSettled(reporters.map((r) => r.close()));
      await workerMessaging.close();
    }
  });
});
