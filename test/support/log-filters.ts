/**
 * The log-based metrics of infra/monitoring read offline: each metric's filter with the module's
 * locals and the given variables substituted, and a matcher for the part of the Cloud Logging
 * query language those filters use (terms joined by AND: `path="text"`, `path=number`,
 * `path>=number`, `path=~"regex"`, `severity<=NAME`, each optionally preceded by NOT), and the
 * module's log exclusions the same way.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { ROOT } from './functions.js';

export const MONITORING_MODULE = path.join(ROOT, 'infra/monitoring/main.tf');

type Body = Record<string, unknown>;

export interface LogMetric {
  /** Resource name, with the for_each key: `events_applied`, `operations_ended[cancelled]`. */
  address: string;
  filter: string;
  valueExtractor?: string;
  labelExtractors: Record<string, string>;
}

/** A log entry as Cloud Logging stores a function's JSON line. */
export interface LogEntry {
  resource: { type: string; labels: Record<string, string> };
  severity: string;
  logName?: string;
  httpRequest?: { status: number };
  jsonPayload: Record<string, unknown>;
}

/** Every google_logging_project_exclusion of the module: key and filter, expanded with `vars`. */
export async function monitoringLogExclusions(
  vars: Record<string, string>,
): Promise<{ key: string; filter: string }[]> {
  const parsed = await parse('main.tf', readFileSync(MONITORING_MODULE, 'utf8'));
  const locals: Body = Object.assign({}, ...((parsed.locals as Body[] | undefined) ?? []));
  const scope = Object.fromEntries(Object.entries(vars).map(([k, v]) => [`var.${k}`, v]));
  const resources = (parsed.resource as Body).google_logging_project_exclusion as Body;
  const out: { key: string; filter: string }[] = [];
  for (const bodies of Object.values(resources)) {
    const body = first(bodies);
    const forEach = /local\.(\w+)/.exec(String(body.for_each ?? ''))?.[1];
    if (!forEach) throw new Error('an exclusion without for_each over a local');
    for (const [key, value] of Object.entries(locals[forEach] as Record<string, string>)) {
      out.push({ key, filter: expand(value, locals, { ...scope, 'each.key': key }) });
    }
  }
  return out;
}

const SEVERITIES = ['DEFAULT', 'DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL'];

function first(value: unknown): Body {
  return (Array.isArray(value) ? value[0] : value) as Body;
}

function expand(text: string, locals: Body, scope: Record<string, string>): string {
  let result = text;
  for (let i = 0; i < 20 && result.includes('${'); i++) {
    result = result.replace(
      /\$\{(local|var|each)\.(\w+)\}/g,
      (whole, kind: string, name: string) => {
        if (kind === 'local' && typeof locals[name] === 'string') return locals[name] as string;
        const value = scope[`${kind}.${name}`];
        if (value === undefined) throw new Error(`cannot expand ${whole} in ${text}`);
        return value;
      },
    );
  }
  if (result.includes('${')) throw new Error(`unexpanded reference in ${result}`);
  return result;
}

/** Every google_logging_metric of the module, its filter expanded with `vars`. */
export async function monitoringLogMetrics(vars: Record<string, string>): Promise<LogMetric[]> {
  const parsed = await parse('main.tf', readFileSync(MONITORING_MODULE, 'utf8'));
  const locals: Body = Object.assign({}, ...((parsed.locals as Body[] | undefined) ?? []));
  const scope = Object.fromEntries(Object.entries(vars).map(([k, v]) => [`var.${k}`, v]));
  const metrics: LogMetric[] = [];
  const resources = (parsed.resource as Body).google_logging_metric as Body;
  for (const [name, bodies] of Object.entries(resources)) {
    const body = first(bodies);
    const forEach = /^\$\{local\.(\w+)\}$/.exec(String(body.for_each ?? ''))?.[1];
    const instances: [string, Record<string, string>][] = forEach
      ? Object.entries(locals[forEach] as Record<string, string>).map(([key, value]) => [
          `${name}[${key}]`,
          { ...scope, 'each.key': key, 'each.value': expand(value, locals, scope) },
        ])
      : [[name, scope]];
    for (const [address, s] of instances) {
      metrics.push({
        address,
        filter: expand(String(body.filter), locals, s),
        ...(body.value_extractor === undefined
          ? {}
          : { valueExtractor: String(body.value_extractor) }),
        labelExtractors: (body.label_extractors as Record<string, string> | undefined) ?? {},
      });
    }
  }
  return metrics;
}

function valueAt(entry: LogEntry, fieldPath: string): unknown {
  let value: unknown = entry;
  for (const part of fieldPath.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const TERM = /^(NOT )?([\w.]+)(=~|>=|<=|=)("(?:[^"\\]|\\.)*"|[\w.-]+)$/;

/** Whether `entry` matches `filter` (the subset of the query language described above). */
export function matchesFilter(filter: string, entry: LogEntry): boolean {
  return filter.split(' AND ').every((term) => {
    const m = TERM.exec(term.trim());
    if (!m?.[2] || !m[3] || m[4] === undefined) throw new Error(`unsupported filter term: ${term}`);
    const [, not, fieldPath, op, raw] = m;
    const expected = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    const actual = valueAt(entry, fieldPath);
    let result: boolean;
    if (actual === undefined || actual === null) result = false;
    else if (op === '=~') result = new RegExp(expected).test(String(actual));
    else if (op === '<=' && fieldPath === 'severity') {
      result = SEVERITIES.indexOf(String(actual)) <= SEVERITIES.indexOf(expected);
    } else if (op === '<=') result = Number(actual) <= Number(expected);
    else if (op === '>=') result = Number(actual) >= Number(expected);
    else result = String(actual) === expected;
    return not ? !result : result;
  });
}

/** The value an `EXTRACT(jsonPayload.x)` extractor takes from `entry`. */
export function extract(extractor: string, entry: LogEntry): unknown {
  const m = /^EXTRACT\(([\w.]+)\)$/.exec(extractor);
  if (!m?.[1]) throw new Error(`unsupported extractor: ${extractor}`);
  return valueAt(entry, m[1]);
}

/** A function's JSON log line as Cloud Logging stores it for the Cloud Run service `service`. */
export function entryOf(service: string, line: Record<string, unknown>): LogEntry {
  const { severity, ...payload } = line;
  return {
    resource: { type: 'cloud_run_revision', labels: { service_name: service } },
    severity: String(severity ?? 'DEFAULT'),
    logName: 'projects/p/logs/run.googleapis.com%2Fstdout',
    jsonPayload: payload,
  };
}

/** The platform's request log entry of one request to the Cloud Run service `service`. */
export function requestLogOf(service: string, status: number): LogEntry {
  return {
    resource: { type: 'cloud_run_revision', labels: { service_name: service } },
    severity: status >= 500 ? 'ERROR' : 'INFO',
    logName: 'projects/p/logs/run.googleapis.com%2Frequests',
    httpRequest: { status },
    jsonPayload: {},
  };
}
