/** The worker SDK against the emulators: publishing through the real pipeline, and cancellation. */
import { randomUUID } from 'node:crypto';
import { Topic } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Code, LroError } from '../../shared/sdk/errors.js';
import { createLogger } from '../../shared/sdk/log.js';
import { publishNotification } from '../../shared/sdk/notifications.js';
import { cancellationFromStore, OperationReporter } from '../../shared/sdk/reporter.js';
import { type EventStack, progress, startEventStack } from '../support/event-stack.js';
import { doneOperation, result } from '../support/pipeline.js';

let s: EventStack;

beforeAll(async () => {
  s = await startEventStack();
});

afterAll(async () => {
  await s?.close();
});

function aborted(signal: AbortSignal, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const timer = setTimeout(() => reject(new Error('signal did not abort')), timeoutMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    });
  });
}

describe('OperationReporter', () => {
  it('asks Pub/Sub whether it answers once per process, not once per reporter', async () => {
    // Each reporter below owns its Messaging, as a worker that opens one per task does; the
    // reachability request (a GetTopic, an administrator operation with its own quota) is made
    // at most once for the endpoint.
    const getMetadata = vi.spyOn(Topic.prototype, 'getMetadata');
    try {
      for (let i = 0; i < 10; i++) {
        const { operation } = await s.store.create();
        const reporter = await OperationReporter.open({
          config: s.config,
          operation: operation.name,
          topics: { notifications: false },
          heartbeatIntervalMs: 0,
        });
        try {
          await reporter.succeed(result(`task ${i}`));
        } finally {
          await reporter.close();
        }
      }
      expect(getMetadata.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      getMetadata.mockRestore();
    }
  });

  it('reports progress and success; the final state carries the last metadata', async () => {
    const { operation } = await s.store.create();
    const reporter = new OperationReporter({
      config: s.config,
      operation: operation.name,
      topics: { notifications: false },
    });
    try {
      const ids = [
        await reporter.progress(progress(1)),
        await reporter.progress(progress(2)),
        await reporter.succeed(result('done')),
      ];
      expect(new Set(ids).size).toBe(3);
      await expect(reporter.progress(progress(3))).rejects.toMatchObject({
        code: Code.FAILED_PRECONDITION,
      });
    } finally {
      await reporter.close();
    }
    expect(await doneOperation(s.store, operation.name)).toEqual({
      name: operation.name,
      done: true,
      metadata: progress(2),
      response: result('done'),
    });
  });

  it('reports an LroError with its code and details, and a plain Error as INTERNAL', async () => {
    const first = (await s.store.create()).operation.name;
    const second = (await s.store.create()).operation.name;
    const details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'BAD_INPUT' }];
    const a = new OperationReporter({
      messaging: s.messaging,
      topics: { events: s.config.topics.events },
      operation: first,
    });
    const b = new OperationReporter({
      messaging: s.messaging,
      topics: { events: s.config.topics.events },
      operation: second,
    });
    await a.fail(new LroError(Code.INVALID_ARGUMENT, 'row 7 is malformed', { details }));
    await b.fail(new Error('disk full'));
    await Promise.all([a.close(), b.close()]);
    expect((await doneOperation(s.store, first)).error).toEqual({
      code: Code.INVALID_ARGUMENT,
      message: 'row 7 is malformed',
      details,
    });
    expect((await doneOperation(s.store, second)).error).toEqual({
      code: Code.INTERNAL,
      message: 'disk full',
    });
  });

  it('rejects invalid events before publishing them', async () => {
    const { operation } = await s.store.create();
    const reporter = new OperationReporter({
      config: s.config,
      operation: operation.name,
      topics: { notifications: false },
    });
    try {
      await expect(reporter.progress({ percent: 5 } as never)).rejects.toMatchObject({
        code: Code.INVALID_ARGUMENT,
      });
      await expect(reporter.fail({ code: 0, message: 'fine' })).rejects.toMatchObject({
        code: Code.INVALID_ARGUMENT,
      });
      expect(() => new OperationReporter({ config: s.config, operation: 'jobs/1' })).toThrow(
        LroError,
      );
    } finally {
      await reporter.close();
    }
  });

  it('aborts the signal when cancellation is announced, only for that operation', async () => {
    const target = (await s.store.create()).operation.name;
    const other = (await s.store.create()).operation.name;
    const reporter = await OperationReporter.open({ config: s.config, operation: target });
    const bystander = await OperationReporter.open({ config: s.config, operation: other });
    try {
      // What the API does on CancelOperation: record the request, then announce it.
      const { operation: record } = await s.store.requestCancel(target);
      await publishNotification(s.messaging, s.config.topics.notifications, {
        type: 'cancelRequested',
        operation: record,
      });
      const reason = await aborted(reporter.signal, 10_000);
      expect(reason).toBeInstanceOf(LroError);
      expect((reason as LroError).code).toBe(Code.CANCELLED);
      expect(bystander.signal.aborted).toBe(false);
      await reporter.fail(reporter.signal.reason);
    } finally {
      await Promise.all([reporter.close(), bystander.close()]);
    }
    expect((await doneOperation(s.store, target)).error?.code).toBe(Code.CANCELLED);
  });

  it('aborts the signal through the polling fallback when no notification comes', async () => {
    const { operation } = await s.store.create();
    const reporter = new OperationReporter({
      config: s.config,
      operation: operation.name,
      topics: { notifications: false },
      pollCancellation: cancellationFromStore(s.store),
      cancelPollIntervalMs: 100,
    });
    try {
      expect(reporter.signal.aborted).toBe(false);
      await s.store.requestCancel(operation.name);
      const reason = await aborted(reporter.signal, 5_000);
      expect((reason as LroError).code).toBe(Code.CANCELLED);
    } finally {
      await reporter.close();
    }
  });

  it('opens without its listener when the subscription is refused: one warning, publishing and polling go on', async () => {
    const first = (await s.store.create()).operation.name;
    const second = (await s.store.create()).operation.name;
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    // A notifications topic that does not exist: the emulator refuses the subscription (NOT_FOUND),
    // as Pub/Sub refuses an account without subscription rights (PERMISSION_DENIED).
    const topics = { notifications: `missing-notifications-${randomUUID()}` };
    const polled = await OperationReporter.open({
      config: s.config,
      operation: first,
      topics,
      pollCancellation: cancellationFromStore(s.store),
      cancelPollIntervalMs: 200,
      log,
    });
    const unpolled = await OperationReporter.open({
      config: s.config,
      operation: second,
      topics,
      log,
    });
    try {
      expect(polled.listening).toBe(false);
      expect(unpolled.listening).toBe(false);
      const warnings = lines.filter((l) => l.severity === 'WARNING');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        message: 'cancellation listener unavailable; cancellation is seen by polling only',
        topic: topics.notifications,
        fallback: 'pollCancellation every 200 ms',
      });

      await polled.progress(progress(1));
      await unpolled.succeed(result('published anyway'));
      await s.store.requestCancel(first);
      const reason = await aborted(polled.signal, 10_000);
      expect((reason as LroError).code).toBe(Code.CANCELLED);
      await polled.fail(reason as LroError);
    } finally {
      await Promise.all([polled.close(), unpolled.close()]);
    }
    expect(await doneOperation(s.store, second)).toMatchObject({
      done: true,
      response: result('published anyway'),
    });
    expect(await doneOperation(s.store, first)).toMatchObject({
      done: true,
      metadata: progress(1),
      error: { code: Code.CANCELLED },
    });
  });

  it('says when no fallback is left once the listener is refused', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const operation = (await s.store.create()).operation.name;
    const reporter = await OperationReporter.open({
      config: s.config,
      operation,
      topics: { notifications: `missing-notifications-${randomUUID()}` },
      log,
    });
    await reporter.close();
    expect(lines.filter((l) => l.severity === 'WARNING')).toEqual([
      expect.objectContaining({
        message:
          'cancellation listener unavailable and no polling fallback: cancellation requests are not seen',
        fallback: 'none',
        hint: expect.stringContaining('cancellationFromApi'),
      }),
    ]);
  });
});
