/**
 * Trace context for log lines. Cloud Logging groups a request's lines under its trace when each
 * line carries `logging.googleapis.com/trace` = `projects/PROJECT/traces/TRACE_ID` (and, when
 * known, `logging.googleapis.com/spanId` and `logging.googleapis.com/trace_sampled`). The trace
 * comes from the `traceparent` header (W3C Trace Context) or Google's `X-Cloud-Trace-Context`
 * (`TRACE_ID/SPAN_ID;o=OPTIONS`, the span ID in decimal).
 */
import type { Logger } from '../../sdk/log.js';

export const TRACE_FIELD = 'logging.googleapis.com/trace';
export const SPAN_FIELD = 'logging.googleapis.com/spanId';
export const SAMPLED_FIELD = 'logging.googleapis.com/trace_sampled';

export interface TraceHeaders {
  traceparent?: string | undefined;
  xCloudTraceContext?: string | undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CLOUD_TRACE = /^([0-9a-fA-F]{32})(?:\/(\d{1,20}))?(?:;o=([01]))?$/;
const ZERO_TRACE = /^0+$/;

/**
 * The log fields of a trace, or an empty object when neither header carries a valid one.
 * `traceparent` wins over `X-Cloud-Trace-Context` when both are valid.
 */
export function traceFields(projectId: string, headers: TraceHeaders): Record<string, unknown> {
  const parent = TRACEPARENT.exec(headers.traceparent?.trim().toLowerCase() ?? '');
  if (parent?.[2] && parent[3] && parent[4] && parent[1] !== 'ff' && !ZERO_TRACE.test(parent[2])) {
    return {
      [TRACE_FIELD]: `projects/${projectId}/traces/${parent[2]}`,
      ...(ZERO_TRACE.test(parent[3]) ? {} : { [SPAN_FIELD]: parent[3] }),
      [SAMPLED_FIELD]: (Number.parseInt(parent[4], 16) & 1) === 1,
    };
  }
  const cloud = CLOUD_TRACE.exec(headers.xCloudTraceContext?.trim() ?? '');
  if (cloud?.[1] && !ZERO_TRACE.test(cloud[1])) {
    const span = cloud[2] === undefined ? undefined : BigInt(cloud[2]);
    return {
      [TRACE_FIELD]: `projects/${projectId}/traces/${cloud[1].toLowerCase()}`,
      ...(span !== undefined && span > 0n && span < 2n ** 64n
        ? { [SPAN_FIELD]: span.toString(16).padStart(16, '0') }
        : {}),
      ...(cloud[3] === undefined ? {} : { [SAMPLED_FIELD]: cloud[3] === '1' }),
    };
  }
  return {};
}

/** A logger adding `fields` to every line (the line's own fields win). */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  if (Object.keys(fields).length === 0) return logger;
  return {
    debug: (m, f) => logger.debug(m, { ...fields, ...f }),
    info: (m, f) => logger.info(m, { ...fields, ...f }),
    warn: (m, f) => logger.warn(m, { ...fields, ...f }),
    error: (m, f) => logger.error(m, { ...fields, ...f }),
  };
}
