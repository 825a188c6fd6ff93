/**
 * The structured log lines the log-based metrics of infra/monitoring are built on: what the
 * subscriber and the API write under the real functions framework, with Cloud Logging's trace
 * field when the request carries a trace.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/sdk/log.js';
import {
  SAMPLED_FIELD,
  SPAN_FIELD,
  TRACE_FIELD,
  traceFields,
  withFields,
} from '../../shared/service/runtime/trace.js';
import { type EventStack, event, startEventStack, until } from '../support/event-stack.js';
import {
  entryOf,
  extract,
  type LogMetric,
  matchesFilter,
  monitoringLogMetrics,
} from '../support/log-filters.js';
import { type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** Service names as infra/functions names them with the default prefix. */
const services = { api: 'lro-operations', subscriber: 'lro-subscriber', sweeper: 'lro-sweeper' };
let metrics: LogMetric[] = [];

beforeAll(async () => {
  metrics = await monitoringLogMetrics({
    project_id: 'p',
    name_prefix: 'lro',
    api_service_name: services.api,
    subscriber_service_name: services.subscriber,
    events_subscription_name: 'lro-events-to-subscriber',
  });
});

/** The log-based metrics of infra/monitoring that count `line`, written by `service`. */
function countedBy(service: string, line: Record<string, unknown> | undefined): string[] {
  if (!line) throw new Error('no line');
  const entry = entryOf(service, line);
  return metrics.filter((m) => matchesFilter(m.filter, entry)).map((m) => m.address);
}

function lines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

describe('trace fields', () => {
  it('reads a W3C traceparent, project-qualified, with span and sampling', () => {
    expect(traceFields('p1', { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` })).toEqual({
      [TRACE_FIELD]: `projects/p1/traces/${TRACE_ID}`,
      [SPAN_FIELD]: '00f067aa0ba902b7',
      [SAMPLED_FIELD]: true,
    });
    expect(
      traceFields('p1', { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-00` })[SAMPLED_FIELD],
    ).toBe(false);
  });

  it('reads X-Cloud-Trace-Context, its decimal span ID turned into hex', () => {
    expect(traceFields('p2', { xCloudTraceContext: `${TRACE_ID.toUpperCase()}/255;o=1` })).toEqual({
      [TRACE_FIELD]: `projects/p2/traces/${TRACE_ID}`,
      [SPAN_FIELD]: '00000000000000ff',
      [SAMPLED_FIELD]: true,
    });
    expect(traceFields('p2', { xCloudTraceContext: TRACE_ID })).toEqual({
      [TRACE_FIELD]: `projects/p2/traces/${TRACE_ID}`,
    });
  });

  it('prefers traceparent, and ignores malformed or all-zero traces', () => {
    const other = 'a'.repeat(32);
    expect(
      traceFields('p', {
        traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
        xCloudTraceContext: `${other}/1`,
      })[TRACE_FIELD],
    ).toBe(`projects/p/traces/${TRACE_ID}`);
    for (const headers of [
      {},
      { traceparent: 'garbage' },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: `ff-${TRACE_ID}-00f067aa0ba902b7-01` },
      { xCloudTraceContext: 'xyz/1' },
      { xCloudTraceContext: `${'0'.repeat(32)}/1` },
    ]) {
      expect(traceFields('p', headers), JSON.stringify(headers)).toEqual({});
    }
    // A bad traceparent falls back to X-Cloud-Trace-Context.
    expect(
      traceFields('p', { traceparent: 'garbage', xCloudTraceContext: other })[TRACE_FIELD],
    ).toBe(`projects/p/traces/${other}`);
  });

  it('adds the fields to every line of a logger, keeping severity and message', () => {
    const written: string[] = [];
    const logger = withFields(
      createLogger({}, (l) => written.push(l)),
      traceFields('p', { xCloudTraceContext: TRACE_ID }),
    );
    logger.info('hello', { operation: 'operations/x' });
    logger.error('bad', { operation: 'operations/y' });
    expect(written.map((l) => JSON.parse(l))).toEqual([
      {
        severity: 'INFO',
        message: 'hello',
        operation: 'operations/x',
        [TRACE_FIELD]: `projects/p/traces/${TRACE_ID}`,
      },
      {
        severity: 'ERROR',
        message: 'bad',
        operation: 'operations/y',
        [TRACE_FIELD]: `projects/p/traces/${TRACE_ID}`,
      },
    ]);
  });
});

describe('subscriber log lines', () => {
  let s: EventStack;

  beforeAll(async () => {
    s = await startEventStack({ messageOrdering: false });
  }, 120_000);

  afterAll(async () => {
    await s?.close();
  });

  it('logs every applied event at INFO with its type, outcome, code and apply latency', async () => {
    const { operation } = await s.store.create({});
    const progress = event(operation.name, 'metadata', {
      metadata: { '@type': 'type.googleapis.com/test.Progress', step: 1 },
    });
    await s.publishEvent(progress);
    await until(
      async () => (await s.store.get(operation.name)).operation.metadata !== undefined,
      30_000,
      'progress applied',
    );
    await s.publishEvent(
      event(operation.name, 'failed', { error: { code: 1, message: 'cancelled' } }),
    );
    const applied = () =>
      lines(s.subscriber.output()).filter(
        (l) => l.message === 'event applied' && l.operation === operation.name,
      );
    // Each line is written once its change is announced: the failure, published once the progress
    // was stored, can be announced (and logged) before the progress is. Taken by type, not order.
    const ofType = (type: string) => applied().find((l) => l.type === type);
    await until(
      () => ofType('metadata') !== undefined && ofType('failed') !== undefined,
      30_000,
      'the event applied lines of both events',
    );
    const first = ofType('metadata');
    const second = ofType('failed');
    expect(first).toMatchObject({
      severity: 'INFO',
      type: 'metadata',
      outcome: 'applied',
      eventId: progress.eventId,
      messageId: expect.any(String),
      applyLatencyMs: expect.any(Number),
    });
    expect(first).not.toHaveProperty('code');
    expect(second).toMatchObject({ severity: 'INFO', type: 'failed', outcome: 'applied', code: 1 });
    for (const line of [first, second]) {
      const latency = line?.applyLatencyMs as number;
      expect(latency).toBeGreaterThanOrEqual(0);
      expect(latency).toBeLessThan(60_000);
    }

    // What the log-based metrics of infra/monitoring make of these lines.
    expect(countedBy(services.subscriber, first).sort()).toEqual([
      'apply_latency',
      'events_applied',
    ]);
    expect(countedBy(services.subscriber, second).sort()).toEqual([
      'apply_latency',
      'events_applied',
      'operations_ended[cancelled]',
    ]);
    const byAddress = new Map(metrics.map((m) => [m.address, m]));
    const latencyMetric = byAddress.get('apply_latency');
    const appliedMetric = byAddress.get('events_applied');
    const entry = entryOf(services.subscriber, second ?? {});
    expect(extract(latencyMetric?.valueExtractor ?? '', entry)).toBe(second?.applyLatencyMs);
    expect(extract(latencyMetric?.labelExtractors.type ?? '', entry)).toBe('failed');
    expect(extract(appliedMetric?.labelExtractors.outcome ?? '', entry)).toBe('applied');
    // The same line from another service is not the subscriber's.
    expect(countedBy(services.api, second)).toEqual([]);
  });

  it('logs a dead-lettered event at ERROR, counted by the dead-letter metric', async () => {
    const messageId = randomUUID();
    const response = await fetch(s.stack.pushEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from('not json').toString('base64'),
          attributes: {},
          messageId,
          publishTime: new Date().toISOString(),
        },
        subscription: `projects/${s.config.projectId}/subscriptions/direct`,
      }),
    });
    expect(response.status).toBeLessThan(300);
    const find = () =>
      lines(s.subscriber.output()).find(
        (l) => l.message === 'event dead-lettered' && l.messageId === messageId,
      );
    await until(() => find() !== undefined, 30_000, 'dead-lettered line');
    expect(find()).toMatchObject({ severity: 'ERROR', reason: expect.any(String) });
    expect(countedBy(services.subscriber, find())).toEqual(['events_dead_lettered']);
  });

  it('carries the trace of the push request on its lines', async () => {
    const { operation } = await s.store.create({});
    const body = {
      message: {
        data: Buffer.from(
          JSON.stringify(
            event(operation.name, 'succeeded', {
              response: { '@type': 'type.googleapis.com/test.Result' },
            }),
          ),
        ).toString('base64'),
        attributes: { operation: operation.name, type: 'succeeded' },
        messageId: randomUUID(),
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${s.config.projectId}/subscriptions/direct`,
    };
    const response = await fetch(s.stack.pushEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify(body),
    });
    expect(response.status).toBeLessThan(300);
    await until(
      () =>
        lines(s.subscriber.output()).some(
          (l) => l.message === 'event applied' && l.operation === operation.name,
        ),
      30_000,
      'event applied line',
    );
    const line = lines(s.subscriber.output()).find(
      (l) => l.message === 'event applied' && l.operation === operation.name,
    );
    expect(line).toMatchObject({
      type: 'succeeded',
      [TRACE_FIELD]: `projects/${s.config.projectId}/traces/${TRACE_ID}`,
    });
    expect(countedBy(services.subscriber, line)).toContain('operations_ended[succeeded]');
  });
});

describe('log-based metrics', () => {
  it("count the sweeper's deadline line from any service of the deployment", () => {
    const line = {
      severity: 'INFO',
      message: 'operation deadline exceeded',
      operation: 'operations/x',
      limit: 'heartbeat',
    };
    expect(countedBy(services.sweeper, line)).toEqual(['operations_ended[deadline_exceeded]']);
    expect(countedBy('other-sweeper', line)).toEqual([]);
  });

  it('reject an unsupported filter term, so that a new filter is not silently unchecked', () => {
    expect(() => matchesFilter('jsonPayload.a:"b"', entryOf('s', {}))).toThrow(/unsupported/);
  });
});

describe('API log lines', () => {
  let api: OperationsStack;

  beforeAll(async () => {
    api = await startOperationsStack();
  }, 120_000);

  afterAll(async () => {
    await api?.stop();
  });

  it('logs each created operation and each request with the trace of the request', async () => {
    const response = await fetch(`${api.url}/v1/operations`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-cloud-trace-context': `${TRACE_ID}/1;o=1`,
      },
      body: '{}',
    });
    expect(response.status).toBe(200);
    const { name } = (await response.json()) as { name: string };
    const trace = `projects/${api.config.projectId}/traces/${TRACE_ID}`;
    await until(
      () => lines(api.fn.output()).some((l) => l.message === 'POST /v1/operations 200'),
      30_000,
      'request line',
    );
    const all = lines(api.fn.output());
    const created = all.find((l) => l.message === 'operation created' && l.operation === name);
    expect(created).toEqual(expect.objectContaining({ severity: 'INFO', [TRACE_FIELD]: trace }));
    expect(countedBy(services.api, created)).toEqual(['operations_created']);
    expect(all.find((l) => l.message === 'POST /v1/operations 200')).toEqual(
      expect.objectContaining({
        severity: 'INFO',
        [TRACE_FIELD]: trace,
        httpRequest: expect.objectContaining({ status: 200 }),
      }),
    );
  });
});
