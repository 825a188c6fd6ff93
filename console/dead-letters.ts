/** The dead-letters pages: the list (reason, operation, time) and one entry with replay and discard. */
import { Code, LroError } from '../shared/sdk/errors.js';
import { type DeadLetter, type DeadLettersPage, enc, request } from './api.js';
import { announce, confirmAction, h, json, replace } from './dom.js';
import { errorBox } from './operations.js';
import { pager } from './pager.js';
import { href, navigate, type View } from './router.js';
import { type Column, table } from './table.js';
import { absoluteTime } from './times.js';

const OPERATION_NAME = /^operations\/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const idOfLetter = (letter: DeadLetter) => letter.name.replace(/^deadLetters\//, '');

/** The operation as a link when it is a valid operation name, as plain text otherwise. */
function operationCell(operation: string | undefined): Node {
  if (operation === undefined) return document.createTextNode('—');
  if (!OPERATION_NAME.test(operation)) return h('span', { class: 'name' }, operation);
  return h('a', { href: href({ operation: operation.slice('operations/'.length) }) }, operation);
}

export async function renderDeadLetters(main: HTMLElement, view: View): Promise<void> {
  const one = view.params.get('deadLetter');
  if (one) {
    await renderDeadLetter(main, one);
    return;
  }
  const page = view.params.get('page') ?? '';
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  replace(
    main,
    h('h1', { tabindex: -1 }, 'Dead letters'),
    h(
      'p',
      { class: 'muted' },
      'Events that could not be applied, newest first. Replay one once its cause is fixed.',
    ),
    body,
  );
  let result: DeadLettersPage;
  try {
    result = await request<DeadLettersPage>(
      'GET',
      `v1/deadLetters?pageSize=25${page ? `&pageToken=${enc(page)}` : ''}`,
    );
  } catch (err) {
    replace(body, errorBox(err));
    return;
  }
  const letters = result.deadLetters ?? [];
  const columns: Column<DeadLetter>[] = [
    { heading: 'Time', cell: (letter) => absoluteTime(letter.deadLetterTime) },
    { heading: 'Operation', class: 'name', cell: (letter) => operationCell(letter.operation) },
    { heading: 'Reason', class: 'reason', cell: (letter) => letter.reason },
    {
      heading: 'Entry',
      cell: (letter) =>
        h('a', { href: href({ view: 'dead-letters', deadLetter: idOfLetter(letter) }) }, 'Show'),
    },
  ];
  replace(
    body,
    letters.length === 0
      ? h('p', { class: 'muted' }, 'No dead letters.')
      : table('dead-letters', columns, letters, (letter) => letter.name),
    pager({ view: 'dead-letters' }, page, result.nextPageToken),
  );
}

async function renderDeadLetter(main: HTMLElement, id: string): Promise<void> {
  const name = `deadLetters/${id}`;
  const heading = h('h1', { tabindex: -1 }, name);
  const back = h('p', {}, h('a', { href: href({ view: 'dead-letters' }) }, 'All dead letters'));
  replace(main, heading, h('p', { class: 'muted' }, 'Loading…'));
  let letter: DeadLetter;
  try {
    letter = await request<DeadLetter>('GET', `v1/deadLetters/${enc(id)}`);
  } catch (err) {
    replace(main, heading, errorBox(err), back);
    return;
  }
  // Whether the operation exists: a link to a missing one would only lead to an error page.
  const operationField = h('dd', { id: 'letter-operation' }, operationCell(letter.operation));
  if (letter.operation !== undefined && OPERATION_NAME.test(letter.operation)) {
    const opName = letter.operation;
    void request('GET', `v1/operations/${enc(opName.slice('operations/'.length))}`).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof LroError) || err.code !== Code.NOT_FOUND) return;
        replace(
          operationField,
          h('span', { class: 'name' }, opName),
          h(
            'p',
            { class: 'muted', id: 'operation-missing' },
            'This operation does not exist (not created yet, deleted, or expired). Replaying the event fails the same way until it is created.',
          ),
        );
      },
    );
  }
  const replay = h('button', { type: 'button', id: 'replay' }, 'Replay');
  const discard = h('button', { type: 'button', id: 'discard', class: 'danger' }, 'Discard');
  replay.addEventListener('click', async () => {
    if (!(await confirmAction(`Publish ${name} to the events topic again?`, 'Replay'))) return;
    try {
      await request('POST', `v1/deadLetters/${enc(id)}:replay`, {});
      announce(`${name} replayed`);
      navigate({ view: 'dead-letters' });
    } catch (err) {
      announce(errorBox(err).textContent ?? '');
    }
  });
  discard.addEventListener('click', async () => {
    if (!(await confirmAction(`Discard ${name}? The event is lost.`, 'Discard'))) return;
    try {
      await request('DELETE', `v1/deadLetters/${enc(id)}`);
      announce(`${name} discarded`);
      navigate({ view: 'dead-letters' });
    } catch (err) {
      announce(errorBox(err).textContent ?? '');
    }
  });
  replace(
    main,
    heading,
    back,
    h(
      'dl',
      { class: 'fields' },
      h('dt', {}, 'Time'),
      h('dd', {}, absoluteTime(letter.deadLetterTime)),
      h('dt', {}, 'Operation'),
      operationField,
      h('dt', {}, 'Reason'),
      h('dd', { id: 'reason' }, letter.reason),
    ),
    h('div', { class: 'actions' }, replay, discard),
    h('h2', {}, 'Event'),
    letter.event === undefined
      ? h(
          'div',
          {},
          h('p', { class: 'muted' }, 'The body is not JSON; its bytes in base64:'),
          h('pre', { class: 'json' }, letter.data),
        )
      : json(letter.event, 'event'),
    h('h2', {}, 'Attributes'),
    json(letter.attributes, 'attributes'),
  );
}
