/**
 * Human output of the `lro` CLI: pure functions from API replies to text, so that they can be
 * tested without a terminal. `--json` output does not go through here.
 */
import { codeName, isCode } from '../shared/sdk/errors.js';
import type { Operation, OperationNode, Status } from '../shared/sdk/model.js';
import { messageOf, percentOf, stateOf } from '../shared/sdk/progress.js';

/** `CODE_NAME (n): message` for a google.rpc.Status. */
export function formatStatus(status: Pick<Status, 'code' | 'message'>): string {
  const name = isCode(status.code) ? codeName(status.code) : 'UNKNOWN';
  return `${name} (${status.code})${status.message ? `: ${status.message}` : ''}`;
}

/** A short summary of where an operation stands: state, progress and message. */
export function formatSummary(operation: Operation): string {
  const parts: string[] = [stateOf(operation)];
  const percent = percentOf(operation.metadata);
  if (!operation.done && percent !== undefined) parts.push(`${Math.floor(percent)}%`);
  if (operation.error) parts.push(formatStatus(operation.error));
  else {
    const message = messageOf(operation.metadata);
    if (message && !operation.done) parts.push(message);
  }
  return parts.join('  ');
}

/**
 * The full human view of one operation; `cancelRequestTime` (the API's x-lro-cancel-requested
 * header) adds a line while the worker has not ended it yet, and after.
 */
export function formatOperation(
  operation: Operation,
  extra: { cancelRequestTime?: string | undefined } = {},
): string {
  const lines = [`${operation.name}  ${formatSummary(operation)}`];
  if (extra.cancelRequestTime) lines.push(`  cancel requested: ${extra.cancelRequestTime}`);
  if (operation.metadata) lines.push(`  metadata: ${JSON.stringify(operation.metadata)}`);
  if (operation.response) lines.push(`  response: ${JSON.stringify(operation.response)}`);
  if (operation.error) {
    lines.push(`  error:    ${formatStatus(operation.error)}`);
    for (const detail of operation.error.details ?? []) {
      lines.push(`            ${JSON.stringify(detail)}`);
    }
  }
  return lines.join('\n');
}

/** A list of operations, one per line, with the next page's token when there is one. */
export function formatList(operations: Operation[], nextPageToken = ''): string {
  const lines: string[] = [];
  if (operations.length === 0) lines.push('(no operations)');
  const width = Math.max(0, ...operations.map((op) => op.name.length));
  for (const op of operations) lines.push(`${op.name.padEnd(width)}  ${formatSummary(op)}`);
  if (nextPageToken) lines.push(`next page: --page-token ${nextPageToken}`);
  return lines.join('\n');
}

/**
 * The tree of an operation and its descendants, with each node's state when it is known:
 *
 *   operations/export  RUNNING  40%
 *   ├── operations/extract  SUCCEEDED
 *   └── operations/load  RUNNING  10%
 */
export function formatTree(
  node: OperationNode,
  states: ReadonlyMap<string, Operation> = new Map(),
): string {
  const lines: string[] = [];
  const label = (name: string) => {
    const op = states.get(name);
    return op ? `${name}  ${formatSummary(op)}` : name;
  };
  const walk = (children: OperationNode[], prefix: string) => {
    children.forEach((child, i) => {
      const last = i === children.length - 1;
      lines.push(`${prefix}${last ? '└── ' : '├── '}${label(child.operation)}`);
      walk(child.childrenOperations, `${prefix}${last ? '    ' : '│   '}`);
    });
  };
  lines.push(label(node.operation));
  walk(node.childrenOperations, '');
  return lines.join('\n');
}

/** Every operation name in a tree, root first. */
export function namesOfTree(node: OperationNode): string[] {
  return [node.operation, ...node.childrenOperations.flatMap(namesOfTree)];
}
