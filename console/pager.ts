/**
 * The links under a list that pages (AIP-158): "First page" when this is not the first, and
 * "Next page" (`#next-page`, rel=next) when the API returned a next page token. The page token
 * lives in the URL's `page` parameter beside the list's own parameters (its filters, its view).
 */
import { h } from './dom.js';
import { href } from './router.js';

export function pager(
  params: Record<string, string | undefined>,
  page: string,
  nextPageToken: string | undefined,
): HTMLDivElement {
  const links = h('div', { class: 'pager' });
  if (page) links.append(h('a', { href: href(params) }, 'First page'));
  if (nextPageToken) {
    links.append(
      h(
        'a',
        { href: href({ ...params, page: nextPageToken }), rel: 'next', id: 'next-page' },
        'Next page',
      ),
    );
  }
  return links;
}
