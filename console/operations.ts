/**
 * The operations pages: the list (newest first, with created, last update and duration; state,
 * metadata @type and name-prefix filters, the match count, pages, refreshed live) and one
 * operation (its times with the deadline countdown and heartbeat freshness, fields, metadata,
 * result, parent, children tree, event history, live updates from :watch, cancel and delete).
 */
import { Code, LroError } from '../shared/sdk/errors.js';
import { messageOf, percentOf, stateOf } from '../shared/sdk/progress.js';
import {
  apiUrl,
  enc,
  type GetParentResponse,
  idOf,
  type Operation,
  type OperationHistory,
  type OperationsPage,
  type OperationTimes,
  request,
} from './api.js';
import { announce, append, confirmAction, h, json, replace } from './dom.js';
import { pager } from './pager.js';
import { href, navigate, type View } from './router.js';
import { type Column, table } from './table.js';
import {
  absoluteTime,
  formatAbsolute,
  formatSpan,
  refreshRelative,
  relativeTime,
} from './times.js';

/** How often the list is read again while it is shown. */
const LIST_REFRESH_MS = 5_000;

export const STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;

/** The ListOperations filter for the list's form fields (AIP-160, as the API reads it). */
export function filterOf(state: string, type: string, name: string): string {
  const terms: string[] = [];
  if (state === 'running') terms.push('done = false');
  if (state === 'succeeded') terms.push('done = true AND error.code = 0');
  if (state === 'failed') terms.push('done = true AND error.code != 0 AND error.code != CANCELLED');
  if (state === 'cancelled') terms.push('error.code = CANCELLED');
  if (type.trim()) terms.push(`metadata.@type = ${quote(type.trim())}`);
  if (name.trim()) {
    // A prefix: the API reads only the names that start with it.
    const n = name.trim().replace(/\*+$/, '');
    terms.push(`name = ${quote(`${n.startsWith('operations/') ? n : `operations/${n}`}*`)}`);
  }
  return terms.join(' AND ');
}

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function stateBadge(operation: Operation): HTMLElement {
  const state = stateOf(operation);
  return h('span', { class: `state ${state}`, 'data-state': state }, state);
}

/**
 * The progress cell: a bar with the percentage and the message, as the CLI draws it; without a
 * percentage, the message alone (or "no progress reported"), never an empty bar.
 */
export function progressOf(operation: Operation): HTMLElement {
  const done = operation.done && !operation.error;
  const percent = done ? 100 : percentOf(operation.metadata);
  const message = messageOf(operation.metadata);
  if (percent === undefined) {
    return h(
      'span',
      { class: 'progress', 'data-percent': '' },
      message
        ? h('span', { class: 'msg' }, message)
        : h('span', { class: 'muted' }, 'no progress reported'),
    );
  }
  const bar = h('progress', {
    max: 100,
    'aria-label': percent === undefined ? 'progress unknown' : `${Math.floor(percent)} percent`,
  });
  if (percent !== undefined) bar.value = percent;
  return h(
    'span',
    { class: 'progress', 'data-percent': percent === undefined ? '' : String(Math.floor(percent)) },
    bar,
    h('span', { class: 'pct' }, percent === undefined ? '?' : `${Math.floor(percent)}%`),
    message ? h('span', { class: 'msg' }, message) : null,
  );
}

function operationLink(name: string): HTMLAnchorElement {
  return h('a', { href: href({ operation: idOf(name) }) }, name);
}

/** The list page; returns a function that stops its live refresh. */
export async function renderList(main: HTMLElement, view: View): Promise<() => void> {
  const state = view.params.get('state') ?? '';
  const type = view.params.get('type') ?? '';
  const name = view.params.get('name') ?? '';
  const page = view.params.get('page') ?? '';
  const pageSize = 25;

  const stateSelect = h(
    'select',
    { name: 'state', id: 'f-state' },
    h('option', { value: '' }, 'any'),
    ...STATES.map((s) => h('option', { value: s, selected: s === state }, s)),
  );
  const typeInput = h('input', {
    name: 'type',
    id: 'f-type',
    value: type,
    placeholder: 'type.googleapis.com/…',
    size: 34,
  });
  const nameInput = h('input', {
    name: 'name',
    id: 'f-name',
    value: name,
    placeholder: 'ID prefix, e.g. demo-',
    size: 24,
  });
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      onsubmit: (e: Event) => {
        e.preventDefault();
        navigate({ state: stateSelect.value, type: typeInput.value, name: nameInput.value });
      },
    },
    h('label', { for: 'f-state' }, 'State', stateSelect),
    h('label', { for: 'f-type' }, 'Metadata @type', typeInput),
    h('label', { for: 'f-name' }, 'Name starts with', nameInput),
    h('button', { type: 'submit' }, 'Apply'),
    h('a', { href: href({}) }, 'Clear'),
  );
  stateSelect.addEventListener('change', () => form.requestSubmit());
  const count = h('p', { id: 'match-count', class: 'muted' });
  const refreshed = h('span', { id: 'refreshed', class: 'muted' });
  const body = h('div', { id: 'list-body' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(
    main,
    h('h1', { tabindex: -1 }, 'Operations'),
    form,
    h('div', { class: 'list-meta' }, count, refreshed),
    body,
  );

  const query = new URLSearchParams({
    pageSize: String(pageSize),
    orderBy: 'create_time desc',
    view: 'FULL',
    showTotalSize: 'true',
  });
  const filter = filterOf(state, type, name);
  if (filter) query.set('filter', filter);
  if (page) query.set('pageToken', page);

  let shown = '';
  let loading = false;
  const load = async (first: boolean): Promise<void> => {
    if (loading) return;
    loading = true;
    try {
      const result = await request<OperationsPage>('GET', `v1/operations?${query}`);
      replace(refreshed, `updated ${formatAbsolute(new Date().toISOString())}, every 5 s`);
      const key = JSON.stringify(result);
      if (key === shown) return;
      shown = key;
      showPage(result);
    } catch (err) {
      if (first) replace(body, errorBox(err));
      else replace(refreshed, `refresh failed: ${errorBox(err).textContent ?? ''}`);
    } finally {
      loading = false;
    }
  };

  const showPage = (result: OperationsPage) => {
    const total = result.totalSize;
    if (total !== undefined) {
      const n = `${total.toLocaleString('en-US')}${result.totalSizeCapped ? '+' : ''}`;
      replace(
        count,
        `${n} ${total === 1 && !result.totalSizeCapped ? 'operation matches' : 'operations match'}, newest first`,
      );
      count.dataset.count = n;
    }
    // Keep the focus where it was (a row's link) across the refresh.
    const focused = document.activeElement;
    const focusedRow = body.contains(focused) ? focused?.closest('tr')?.dataset.name : undefined;
    const operations = result.operations ?? [];
    const times = new Map((result.times ?? []).map((t) => [t.name, t]));
    const links = pager({ state, type, name }, page, result.nextPageToken);
    if (operations.length === 0) {
      replace(
        body,
        h('p', { class: 'muted' }, page ? 'No more operations.' : 'No operations match.'),
        links,
      );
      return;
    }
    const now = Date.now();
    const columns: Column<Operation>[] = [
      { heading: 'Name', class: 'name', cell: (op) => operationLink(op.name) },
      { heading: 'State', cell: stateBadge },
      { heading: 'Progress', cell: (op) => (op.done ? progressOrResult(op) : progressOf(op)) },
      {
        heading: 'Created',
        class: 'created',
        cell: (op) => {
          const t = times.get(op.name);
          return t ? relativeTime(t.createTime, now) : '';
        },
      },
      {
        heading: 'Last update',
        class: 'updated',
        cell: (op) => {
          const t = times.get(op.name);
          return t ? relativeTime(t.updateTime, now) : '';
        },
      },
      {
        heading: 'Duration',
        class: 'duration',
        cell: (op) => {
          const t = times.get(op.name);
          return t?.endTime ? formatSpan(Date.parse(t.endTime) - Date.parse(t.createTime)) : '';
        },
      },
      {
        heading: 'Metadata @type',
        label: 'Metadata',
        class: 'name',
        cell: (op) => String(op.metadata?.['@type'] ?? ''),
      },
    ];
    replace(
      body,
      table('operations', columns, operations, (op) => op.name),
      links,
    );
    if (focusedRow !== undefined) {
      body
        .querySelector<HTMLAnchorElement>(`tr[data-name="${CSS.escape(focusedRow)}"] a`)
        ?.focus({ preventScroll: true });
    }
  };

  await load(true);
  const refresh = window.setInterval(() => void load(false), LIST_REFRESH_MS);
  const ticker = window.setInterval(() => refreshRelative(body), 1_000);
  return () => {
    window.clearInterval(refresh);
    window.clearInterval(ticker);
  };
}

function progressOrResult(op: Operation): HTMLElement {
  if (op.error)
    return h('span', { class: 'msg' }, `code ${op.error.code}: ${op.error.message ?? ''}`);
  return progressOf(op);
}

export function errorBox(err: unknown): HTMLElement {
  const text =
    err instanceof LroError
      ? `${err.status}: ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
  return h('p', { class: 'error', role: 'alert' }, text);
}

/** The page of one operation; returns a function that stops its live updates. */
export async function renderOperation(main: HTMLElement, id: string): Promise<() => void> {
  const name = `operations/${id}`;
  const heading = h('h1', { tabindex: -1 }, name);
  replace(main, heading, h('p', { class: 'muted' }, 'Loading…'));
  let operation: Operation;
  try {
    operation = await request<Operation>('GET', `v1/operations/${enc(id)}`);
  } catch (err) {
    const missing =
      err instanceof LroError && err.code === Code.NOT_FOUND
        ? h(
            'p',
            { class: 'error', role: 'alert', id: 'missing' },
            `${name} does not exist: it was never created, or it was deleted, or it ended longer ago than the retention.`,
          )
        : errorBox(err);
    replace(main, heading, missing, h('p', {}, h('a', { href: href({}) }, 'All operations')));
    return () => {};
  }

  const summary = h('div', { id: 'summary' });
  const metadata = h('div', { id: 'metadata' });
  const result = h('div', { id: 'result' });
  const parent = h('dd', { id: 'parent' }, '…');
  const actions = h('div', { class: 'actions' });
  const children = h('div', { id: 'children' }, h('p', { class: 'muted' }, 'Loading…'));
  const live = h('dd', { id: 'live' }, 'connecting…');
  const timesList = h('dl', { class: 'fields', id: 'times' });
  const history = h('div', { id: 'history' }, h('p', { class: 'muted' }, 'Loading…'));
  let times: OperationTimes | undefined;
  let historyRecord: OperationHistory | undefined;

  const cancelButton = h('button', { type: 'button', id: 'cancel' }, 'Cancel operation');
  const deleteButton = h(
    'button',
    { type: 'button', id: 'delete', class: 'danger' },
    'Delete operation',
  );
  cancelButton.addEventListener('click', async () => {
    if (!(await confirmAction(`Request cancellation of ${name}?`, 'Cancel operation'))) return;
    try {
      await request('POST', `v1/operations/${enc(id)}:cancel`, {});
      announce(`cancellation of ${name} requested`);
    } catch (err) {
      announce(errorBox(err).textContent ?? '');
    }
  });
  deleteButton.addEventListener('click', async () => {
    if (!(await confirmAction(`Delete ${name}? It can no longer be read.`, 'Delete'))) return;
    try {
      await request('DELETE', `v1/operations/${enc(id)}`);
      announce(`${name} deleted`);
      navigate({});
    } catch (err) {
      announce(errorBox(err).textContent ?? '');
    }
  });
  append(actions, cancelButton, deleteButton);

  const show = (op: Operation) => {
    operation = op;
    replace(summary, h('p', {}, stateBadge(op), ' ', op.done && op.error ? null : progressOf(op)));
    replace(
      metadata,
      h('h2', {}, 'Metadata'),
      op.metadata ? json(op.metadata, 'metadata') : h('p', { class: 'muted' }, 'none'),
    );
    if (op.error) replace(result, h('h2', {}, 'Error'), json(op.error, 'error'));
    else if (op.done)
      replace(
        result,
        h('h2', {}, 'Response'),
        op.response ? json(op.response, 'response') : h('p', { class: 'muted' }, 'none'),
      );
    else replace(result);
    // A done operation cannot be cancelled: the button goes.
    cancelButton.disabled = op.done;
    cancelButton.hidden = op.done;
  };

  const showTimes = () => {
    if (!times) return;
    const now = Date.now();
    const rows: (Node | string)[] = [];
    const row = (label: string, id: string, ...value: (Node | string)[]) => {
      rows.push(h('dt', {}, label), h('dd', { id }, ...value));
    };
    row('Created', 'time-created', absoluteTime(times.createTime, now));
    row('Last update', 'time-updated', absoluteTime(times.updateTime, now));
    if (times.endTime) {
      const took = Date.parse(times.endTime) - Date.parse(times.createTime);
      row('Ended', 'time-ended', absoluteTime(times.endTime, now), `, after ${formatSpan(took)}`);
    } else {
      row('Running for', 'time-running', formatSpan(now - Date.parse(times.createTime)));
    }
    if (times.cancelRequestTime) {
      row(
        'Cancellation',
        'time-cancel',
        `requested at `,
        absoluteTime(times.cancelRequestTime, now),
        times.endTime ? '' : '; the worker has not ended the operation yet',
      );
    }
    if (times.deadline) {
      const left = Date.parse(times.deadline) - now;
      row(
        'Deadline',
        'time-deadline',
        absoluteTime(times.deadline, now),
        times.endTime ? '' : left > 0 ? ` — ${formatSpan(left)} left` : ' — passed',
      );
    }
    if (times.heartbeatTimeout || times.lastHeartbeatTime) {
      const timeoutMs = times.heartbeatTimeout
        ? Number.parseFloat(times.heartbeatTimeout) * 1000
        : undefined;
      const last = times.lastHeartbeatTime ?? times.createTime;
      const age = now - Date.parse(last);
      const fresh = timeoutMs === undefined || age <= timeoutMs / 2;
      row(
        'Heartbeat',
        'time-heartbeat',
        h(
          'span',
          { class: times.endTime ? '' : fresh ? 'fresh' : 'stale', 'data-fresh': String(fresh) },
          times.lastHeartbeatTime ? 'last heartbeat ' : 'no heartbeat yet; created ',
          relativeTime(last, now),
          timeoutMs === undefined ? '' : `, timeout ${formatSpan(timeoutMs)}`,
        ),
      );
    }
    if (times.expireTime) row('Kept until', 'time-expire', absoluteTime(times.expireTime, now));
    replace(timesList, ...rows);
  };

  const loadTimes = async () => {
    try {
      times = await request<OperationTimes>('GET', `v1/operations/${enc(id)}/times`);
      showTimes();
      showHistory();
    } catch {
      // Deleted meanwhile: the other parts say so.
    }
  };

  const showHistory = () => {
    if (!historyRecord) return;
    type Entry = { at: string; kind: string; text: (Node | string)[] };
    const entries: Entry[] = historyRecord.events.map((e) => ({
      at: e.applyTime,
      kind: e.outcome,
      text:
        e.outcome === 'HEARTBEAT'
          ? [
              `${e.count ?? 1} heartbeat${(e.count ?? 1) === 1 ? '' : 's'}`,
              e.firstApplyTime && (e.count ?? 1) > 1
                ? ` since ${formatAbsolute(e.firstApplyTime)}`
                : '',
            ]
          : [
              h('strong', {}, e.type),
              ` ${OUTCOME_TEXT[e.outcome]}`,
              e.countedTime ? ` (counted at ${e.countedTime})` : '',
              h('span', { class: 'muted event-id' }, ` eventId ${e.eventId}`),
            ],
    }));
    if (times) {
      entries.push({ at: times.createTime, kind: 'CREATED', text: ['created'] });
      if (times.cancelRequestTime) {
        entries.push({
          at: times.cancelRequestTime,
          kind: 'CANCEL',
          text: ['cancellation requested'],
        });
      }
    }
    entries.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    const now = Date.now();
    replace(
      history,
      h(
        'ol',
        { class: 'timeline', reversed: true },
        ...entries.map((entry) =>
          h('li', { 'data-outcome': entry.kind }, relativeTime(entry.at, now), ' ', ...entry.text),
        ),
      ),
    );
  };

  const loadHistory = async () => {
    try {
      historyRecord = await request<OperationHistory>('GET', `v1/operations/${enc(id)}/history`);
      showHistory();
    } catch (err) {
      replace(history, errorBox(err));
    }
  };

  replace(
    main,
    heading,
    summary,
    h(
      'dl',
      { class: 'fields' },
      h('dt', {}, 'Name'),
      h('dd', {}, name),
      h('dt', {}, 'Parent'),
      parent,
      h('dt', {}, 'Live updates'),
      live,
    ),
    timesList,
    actions,
    metadata,
    result,
    h('h2', {}, 'Children'),
    children,
    h('h2', {}, 'Event history'),
    h(
      'p',
      { class: 'muted' },
      'What the subscriber did with each event, newest first (consecutive heartbeats as one).',
    ),
    history,
  );
  show(operation);
  await Promise.all([loadTimes(), loadHistory()]);

  void request<GetParentResponse>('GET', `v1/operations/${enc(id)}:getParent`).then(
    (reply) =>
      replace(parent, reply.parent ? operationLink(reply.parent) : 'none (a root operation)'),
    () => replace(parent, 'unknown'),
  );
  void renderChildren(children, name);

  // Live updates: the :watch stream sends the state at once and then every change; heartbeats
  // change no state, so the times are read again every few seconds while it runs.
  let source: EventSource | undefined;
  const ticker = window.setInterval(() => {
    showTimes();
    refreshRelative(history);
  }, 1_000);
  const poll = window.setInterval(() => {
    if (!operation.done) void Promise.all([loadTimes(), loadHistory()]);
  }, LIST_REFRESH_MS);
  const stop = () => {
    source?.close();
    source = undefined;
    window.clearInterval(ticker);
    window.clearInterval(poll);
  };
  if (!operation.done) {
    source = new EventSource(apiUrl(`v1/operations/${enc(id)}:watch`));
    source.addEventListener('open', () => replace(live, 'on (server-sent events)'));
    source.addEventListener('operation', (e) => {
      const op = JSON.parse((e as MessageEvent<string>).data) as Operation;
      show(op);
      void Promise.all([loadTimes(), loadHistory()]);
      if (op.done) {
        source?.close();
        source = undefined;
        replace(live, 'off: the operation is done');
        void renderChildren(children, name);
      }
    });
    source.addEventListener('error', () => {
      if (source && source.readyState === EventSource.CLOSED)
        replace(live, 'disconnected; reload to retry');
      else if (source) replace(live, 'reconnecting…');
    });
  } else {
    replace(live, 'off: the operation is done');
  }
  return stop;
}

const OUTCOME_TEXT: Record<string, string> = {
  APPLIED: 'applied',
  CLOCK_CORRECTED: 'applied; its emitTime was ahead of Pub/Sub, so it counted at its publishTime',
  DUPLICATE: 'duplicate: an event of this eventId was handled before; nothing changed',
  STALE: 'stale: newer progress was already stored; nothing changed',
  IGNORED: 'ignored: the operation had already ended',
};

/** The tree of children, two levels deep, each level up to 100 entries. */
async function renderChildren(container: HTMLElement, name: string): Promise<void> {
  const level = async (parentName: string, depth: number): Promise<HTMLElement | null> => {
    const page = await request<OperationsPage>(
      'GET',
      `v1/operations/${enc(idOf(parentName))}/children?pageSize=100`,
    );
    const ops = page.operations ?? [];
    if (ops.length === 0) return null;
    const list = h('ul', { class: depth === 0 ? 'tree root' : 'tree' });
    for (const op of ops) {
      const item = h(
        'li',
        { 'data-name': op.name },
        operationLink(op.name),
        ' ',
        stateBadge(op),
        ' ',
        op.done ? null : progressOf(op),
      );
      if (depth < 2) {
        const below = await level(op.name, depth + 1);
        if (below) item.append(below);
      }
      list.append(item);
    }
    if (page.nextPageToken) list.append(h('li', { class: 'muted' }, 'more children not shown'));
    return list;
  };
  try {
    const tree = await level(name, 0);
    replace(container, tree ?? h('p', { class: 'muted' }, 'none'));
  } catch (err) {
    replace(container, errorBox(err));
  }
}
