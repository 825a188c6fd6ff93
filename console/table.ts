/**
 * The console's tables (the operations list, the dead letters): a header row of column headings
 * and one row per item, each cell labelled with its column's name so that a narrow window can
 * show the rows as stacked cards (`table.responsive` in style.css).
 */
import { type Child, h } from './dom.js';

export interface Column<T> {
  /** The column's heading. */
  heading: string;
  /** The cell's label in the narrow layout (`data-label`); the heading when absent. */
  label?: string;
  /** The cell's class. */
  class?: string;
  cell(item: T): Child;
}

/** A responsive table `id` of `items`, each row carrying `data-name` (nameOf). */
export function table<T>(
  id: string,
  columns: readonly Column<T>[],
  items: readonly T[],
  nameOf: (item: T) => string,
): HTMLTableElement {
  return h(
    'table',
    { class: 'responsive', id },
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c.heading)))),
    h(
      'tbody',
      {},
      ...items.map((item) =>
        h(
          'tr',
          { 'data-name': nameOf(item) },
          ...columns.map((c) =>
            h('td', { class: c.class, 'data-label': c.label ?? c.heading }, c.cell(item)),
          ),
        ),
      ),
    ),
  );
}
