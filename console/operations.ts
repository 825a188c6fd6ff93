/**
 * The operations pages: the list (state, metadata @type and name filters, pages) and one
 * operation (fields, metadata, result, parent, children tree, live updates from :watch, cancel
 * and delete).
 */
import { messageOf, percentOf, stateOf } from '../shared/sdk/progress.js';
import {
  ApiError,
  apiUrl,
  enc,
  idOf,
  type Operation,
  type OperationsPage,
  request,
} from './api.js';
import { announce, append, confirmAction, h, json, replace } from './dom.js';
import { href, navigate, type View } from './router.js';

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
    const n = name.trim();
    terms.push(`name = ${quote(n.startsWith('operations/') ? n : `operations/${n}`)}`);
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

/** The progress cell: a bar with the percentage and the message, as the CLI draws it. */
export function progressOf(operation: Operation): HTMLElement {
  const done = operation.done && !operation.error;
  const percent = done ? 100 : percentOf(operation.metadata);
  const message = messageOf(operation.metadata);
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

export async function renderList(main: HTMLElement, view: View): Promise<void> {
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
    placeholder: 'ID or operations/ID',
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
    h('label', { for: 'f-name' }, 'Name', nameInput),
    h('button', { type: 'submit' }, 'Apply'),
    h('a', { href: href({}) }, 'Clear'),
  );
  stateSelect.addEventListener('change', () => form.requestSubmit());
  const body = h('div', { id: 'list-body' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('h1', { tabindex: -1 }, 'Operations'), form, body);

  const query = new URLSearchParams({ pageSize: String(pageSize) });
  const filter = filterOf(state, type, name);
  if (filter) query.set('filter', filter);
  if (page) query.set('pageToken', page);
  let result: OperationsPage;
  try {
    result = await request<OperationsPage>('GET', `v1/operations?${query}`);
  } catch (err) {
    replace(body, errorBox(err));
    return;
  }
  const operations = result.operations ?? [];
  if (operations.length === 0) {
    replace(
      body,
      h('p', { class: 'muted' }, page ? 'No more operations.' : 'No operations match.'),
    );
  } else {
    const rows = operations.map((op) =>
      h(
        'tr',
        { 'data-name': op.name },
        h('td', { class: 'name', 'data-label': 'Name' }, operationLink(op.name)),
        h('td', { 'data-label': 'State' }, stateBadge(op)),
        h('td', { 'data-label': 'Progress' }, op.done ? progressOrResult(op) : progressOf(op)),
        h('td', { class: 'name', 'data-label': 'Metadata' }, String(op.metadata?.['@type'] ?? '')),
      ),
    );
    replace(
      body,
      h(
        'table',
        { class: 'responsive', id: 'operations' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Name'),
            h('th', { scope: 'col' }, 'State'),
            h('th', { scope: 'col' }, 'Progress'),
            h('th', { scope: 'col' }, 'Metadata @type'),
          ),
        ),
        h('tbody', {}, ...rows),
      ),
    );
  }
  const pager = h('div', { class: 'pager' });
  if (page) pager.append(h('a', { href: href({ state, type, name }) }, 'First page'));
  if (result.nextPageToken) {
    pager.append(
      h(
        'a',
        {
          href: href({ state, type, name, page: result.nextPageToken }),
          rel: 'next',
          id: 'next-page',
        },
        'Next page',
      ),
    );
  }
  body.append(pager);
}

function progressOrResult(op: Operation): HTMLElement {
  if (op.error)
    return h('span', { class: 'msg' }, `code ${op.error.code}: ${op.error.message ?? ''}`);
  return progressOf(op);
}

export function errorBox(err: unknown): HTMLElement {
  const text =
    err instanceof ApiError
      ? `${err.code}: ${err.message}`
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
    replace(main, heading, errorBox(err), h('p', {}, h('a', { href: href({}) }, 'All operations')));
    return () => {};
  }

  const summary = h('div', { id: 'summary' });
  const metadata = h('div', { id: 'metadata' });
  const result = h('div', { id: 'result' });
  const parent = h('dd', { id: 'parent' }, '…');
  const actions = h('div', { class: 'actions' });
  const children = h('div', { id: 'children' }, h('p', { class: 'muted' }, 'Loading…'));
  const live = h('dd', { id: 'live' }, 'connecting…');

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
    cancelButton.disabled = op.done;
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
    actions,
    metadata,
    result,
    h('h2', {}, 'Children'),
    children,
  );
  show(operation);

  void request<{ parent?: string }>('GET', `v1/operations/${enc(id)}:getParent`).then(
    (reply) =>
      replace(parent, reply.parent ? operationLink(reply.parent) : 'none (a root operation)'),
    () => replace(parent, 'unknown'),
  );
  void renderChildren(children, name);

  // Live updates: the :watch stream sends the state at once and then every change.
  let source: EventSource | undefined;
  const stop = () => {
    source?.close();
    source = undefined;
  };
  if (!operation.done) {
    source = new EventSource(apiUrl(`v1/operations/${enc(id)}:watch`));
    source.addEventListener('open', () => replace(live, 'on (server-sent events)'));
    source.addEventListener('operation', (e) => {
      const op = JSON.parse((e as MessageEvent<string>).data) as Operation;
      show(op);
      if (op.done) {
        stop();
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
