/**
 * Human output of the operator views in the `lro` CLI: an operation's times (`lro get`), a list
 * with created/age and state columns (`lro list`, `lro children`) and the event history
 * (`lro history`). Pure functions of the API's replies and the current time. Times are shown in
 * UTC (RFC 3339, with the `Z`), with how long ago or ahead they are.
 */
import type { HistoryItem, OperationHistory, OperationTimes } from '../shared/sdk/client.js';
import type { Operation } from '../shared/sdk/model.js';
import { formatSummary } from './format.js';

/** A span of milliseconds as `850ms`, `42s`, `3m 05s`, `2h 07m`, `3d 4h`. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)}ms`;
  const s = Math.floor(abs / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `12s ago` or `in 3m 05s`. */
export function relative(time: string, now: number): string {
  const ms = now - Date.parse(time);
  return ms >= 0 ? `${formatSpan(ms)} ago` : `in ${formatSpan(-ms)}`;
}

/** The times of one operation, one per line, for `lro get`. */
export function formatTimes(times: OperationTimes, now: number): string[] {
  const lines = [`  created:   ${times.createTime}  (${relative(times.createTime, now)})`];
  lines.push(`  updated:   ${times.updateTime}  (${relative(times.updateTime, now)})`);
  if (times.endTime) {
    const took = Date.parse(times.endTime) - Date.parse(times.createTime);
    lines.push(
      `  ended:     ${times.endTime}  (${relative(times.endTime, now)}, took ${formatSpan(took)})`,
    );
  }
  if (times.cancelRequestTime) {
    lines.push(`  cancel requested: ${times.cancelRequestTime}`);
    if (times.endTime === undefined) {
      lines.push(
        `  cancellation pending: requested ${relative(times.cancelRequestTime, now)}; the worker has not ended it yet`,
      );
    }
  }
  if (times.deadline) {
    const passed = Date.parse(times.deadline) <= now ? 'passed ' : '';
    lines.push(`  deadline:  ${times.deadline}  (${passed}${relative(times.deadline, now)})`);
  }
  if (times.heartbeatTimeout || times.lastHeartbeatTime) {
    const last = times.lastHeartbeatTime
      ? `last ${relative(times.lastHeartbeatTime, now)}`
      : 'none yet';
    const timeout = times.heartbeatTimeout ? `, timeout ${times.heartbeatTimeout}` : '';
    lines.push(`  heartbeat: ${last}${timeout}`);
  }
  if (times.expireTime) {
    lines.push(`  expires:   ${times.expireTime}  (${relative(times.expireTime, now)})`);
  }
  return lines;
}

/**
 * A page of operations as a table: name, state (with progress or error), created (age), and
 * the duration of ended ones.
 */
export function formatTimedList(
  operations: Operation[],
  times: OperationTimes[] | undefined,
  now: number,
  nextPageToken = '',
): string {
  if (operations.length === 0) {
    return nextPageToken
      ? `(no operations)\nnext page: --page-token ${nextPageToken}`
      : '(no operations)';
  }
  const byName = new Map((times ?? []).map((t) => [t.name, t]));
  const rows = operations.map((op) => {
    const t = byName.get(op.name);
    const created = t ? `${relative(t.createTime, now)}` : '';
    const took =
      t?.endTime === undefined
        ? ''
        : `took ${formatSpan(Date.parse(t.endTime) - Date.parse(t.createTime))}`;
    return [op.name, created, took, formatSummary(op)];
  });
  const header = ['NAME', 'CREATED', 'DURATION', 'STATE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...rows.map(line)];
  if (nextPageToken) lines.push(`next page: --page-token ${nextPageToken}`);
  return lines.join('\n');
}

const OUTCOME_WORDS: Record<HistoryItem['outcome'], string> = {
  APPLIED: 'applied',
  CLOCK_CORRECTED: 'applied, clock corrected',
  DUPLICATE: 'duplicate',
  STALE: 'stale',
  IGNORED: 'ignored (already ended)',
  HEARTBEAT: 'heartbeat',
};

/** The event history, newest first, one line per event or heartbeat run. */
export function formatHistory(history: OperationHistory, now: number): string {
  if (history.events.length === 0) return `${history.name}: no events handled yet`;
  const lines = [`${history.name}: ${history.events.length} entries, newest first`];
  for (const item of history.events) {
    const when = `${item.applyTime}  ${relative(item.applyTime, now).padEnd(12)}`;
    if (item.outcome === 'HEARTBEAT') {
      const count = item.count ?? 1;
      const since = item.firstApplyTime && count > 1 ? ` since ${item.firstApplyTime}` : '';
      lines.push(`  ${when}  heartbeat x${count}${since}`);
      continue;
    }
    const parts = [`${item.type.padEnd(9)}  ${OUTCOME_WORDS[item.outcome]}`];
    if (item.countedTime) parts.push(`counted at ${item.countedTime}`);
    if (item.emitTime) parts.push(`emitted ${item.emitTime}`);
    parts.push(`eventId ${item.eventId}`);
    lines.push(`  ${when}  ${parts.join(', ')}`);
  }
  return lines.join('\n');
}
