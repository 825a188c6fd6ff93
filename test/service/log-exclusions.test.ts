/**
 * Metrics without paying for per-event logs: the log exclusions of infra/monitoring drop the
 * routine lines that the real subscriber and API write (per event, per request) and the non-5xx
 * platform request logs from storage, while every log-based metric still counts those lines
 * (project-scoped metrics are calculated from everything the Logging API receives, whatever the
 * exclusions) and the lines the alerts need to be read by a person (errors, warnings, 5xx) stay.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from '@cdktf/hcl2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventStack, event, startEventStack, until } from '../support/event-stack.js';
import {
  entryOf,
  type LogEntry,
  type LogMetric,
  MONITORING_MODULE,
  matchesFilter,
  monitoringLogExclusions,
  monitoringLogMetrics,
  requestLogOf,
} from '../support/log-filters.js';
import { call, type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

const services = { api: 'lro-operations', subscriber: 'lro-subscriber', sweeper: 'lro-sweeper' };
const vars = {
  project_id: 'p',
  name_prefix: 'lro',
  api_service_name: services.api,
  subscriber_service_name: services.subscriber,
  events_subscription_name: 'lro-events-to-subscriber',
};

let metrics: LogMetric[] = [];
let exclusions: { key: string; filter: string }[] = [];
let pipeline: EventStack;
let api: OperationsStack;

beforeAll(async () => {
  [metrics, exclusions, pipeline, api] = await Promise.all([
    monitoringLogMetrics(vars),
    monitoringLogExclusions(vars),
    startEventStack(),
    startOperationsStack(),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([pipeline?.close(), api?.stop()]);
});

const countedBy = (entry: LogEntry) =>
  metrics.filter((m) => matchesFilter(m.filter, entry)).map((m) => m.address);
const excludedBy = (entry: LogEntry) =>
  exclusions.filter((x) => matchesFilter(x.filter, entry)).map((x) => x.key);

function lines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

describe('log exclusions', () => {
  it('are two, on the API and the subscriber only', () => {
    expect(exclusions.map((x) => x.key).sort()).toEqual(['info_lines', 'request_logs']);
    const sweeperLine = entryOf(services.sweeper, {
      severity: 'INFO',
      message: 'operation deadline exceeded',
    });
    expect(excludedBy(sweeperLine)).toEqual([]);
    expect(countedBy(sweeperLine)).toEqual(['operations_ended[deadline_exceeded]']);
  });

  it("drop the subscriber's per-event lines from storage while the metrics still count them", async () => {
    const { operation } = await pipeline.store.create({});
    const applied = () =>
      lines(pipeline.subscriber.output()).filter(
        (l) => l.message === 'event applied' && l.operation === operation.name,
      );
    await pipeline.publishEvent(
      event(operation.name, 'metadata', { metadata: { '@type': 'type.googleapis.com/t.P' } }),
    );
    // The events subscription is unordered: progress delivered after the success would find the
    // operation done and be ignored, without an "event applied" line. The success goes once the
    // progress has been applied.
    await until(
      () => applied().some((l) => l.type === 'metadata'),
      30_000,
      'the progress applied line',
    );
    await pipeline.publishEvent(
      event(operation.name, 'succeeded', { response: { '@type': 'type.googleapis.com/t.R' } }),
    );
    await until(() => applied().length >= 2, 30_000, 'two event applied lines');
    const byType = new Map(applied().map((l) => [l.type, entryOf(services.subscriber, l)]));
    const succeeded = byType.get('succeeded') as LogEntry;
    const metadata = byType.get('metadata') as LogEntry;
    expect(countedBy(metadata).sort()).toEqual(['apply_latency', 'events_applied']);
    expect(countedBy(succeeded).sort()).toEqual([
      'apply_latency',
      'events_applied',
      'operations_ended[succeeded]',
    ]);
    expect(excludedBy(metadata)).toEqual(['info_lines']);
    expect(excludedBy(succeeded)).toEqual(['info_lines']);
  });

  it('keep the dead-letter ERROR line that the dead-letter alert counts', async () => {
    const messageId = randomUUID();
    const response = await fetch(pipeline.stack.pushEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: { data: Buffer.from('not json').toString('base64'), attributes: {}, messageId },
        subscription: `projects/${pipeline.config.projectId}/subscriptions/direct`,
      }),
    });
    expect(response.status).toBeLessThan(300);
    const find = () =>
      lines(pipeline.subscriber.output()).find(
        (l) => l.message === 'event dead-lettered' && l.messageId === messageId,
      );
    await until(() => find() !== undefined, 30_000, 'the dead-lettered line');
    const entry = entryOf(services.subscriber, find() ?? {});
    expect(countedBy(entry)).toEqual(['events_dead_lettered']);
    expect(excludedBy(entry)).toEqual([]);
  });

  it("drop the API's per-request lines, counting creations; keep its warnings", async () => {
    const created = await call(api.url, 'POST', '/v1/operations', {});
    expect(created.status).toBe(200);
    const name = (created.body as { name: string }).name;
    await call(api.url, 'GET', `/v1/${name}`);
    const find = (message: string) =>
      lines(api.fn.output()).find((l) => l.message === message && l.operation === name);
    await until(() => find(`GET /v1/${name} 200`) !== undefined, 10_000, 'the access line');
    const creation = entryOf(services.api, find('operation created') ?? {});
    expect(countedBy(creation)).toEqual(['operations_created']);
    expect(excludedBy(creation)).toEqual(['info_lines']);
    expect(excludedBy(entryOf(services.api, find(`GET /v1/${name} 200`) ?? {}))).toEqual([
      'info_lines',
    ]);
    const warning = entryOf(services.api, { severity: 'WARNING', message: 'could not publish' });
    expect(excludedBy(warning)).toEqual([]);
  });

  it('drop the non-5xx platform request logs of both functions and keep the 5xx ones', () => {
    for (const service of [services.api, services.subscriber]) {
      expect(excludedBy(requestLogOf(service, 200))).toEqual(['request_logs']);
      expect(excludedBy(requestLogOf(service, 404))).toEqual(['request_logs']);
      expect(excludedBy(requestLogOf(service, 503))).toEqual([]);
    }
    expect(excludedBy(requestLogOf(services.sweeper, 200))).toEqual([]);
  });

  it('leave every log-based metric project-scoped, so that it counts excluded entries', async () => {
    const parsed = await parse('main.tf', readFileSync(MONITORING_MODULE, 'utf8'));
    const resources = (parsed.resource as Record<string, Record<string, unknown[]>>)
      .google_logging_metric as Record<string, Record<string, unknown>[]>;
    for (const [name, [body]] of Object.entries(resources)) {
      expect(body, name).not.toHaveProperty('bucket_name');
    }
  });
});
