/**
 * The console's state lives in the URL's query, so that a link shows the same page:
 *   ?state=running&type=…&name=…&page=…   the operations list with its filters and page
 *   ?operation=ID                         one operation
 *   ?view=dead-letters[&page=…]           the dead letters; &deadLetter=ID for one of them
 * Links are real links (keyboard, new tabs); the page handles them without a reload.
 */

export interface View {
  params: URLSearchParams;
}

type Listener = () => void;
let listener: Listener = () => {};

/** A console URL (relative to the page) for a state; empty values are left out. */
export function href(state: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== undefined && value !== '') params.set(key, value);
  }
  const query = params.toString();
  return query ? `./?${query}` : './';
}

export function navigate(state: Record<string, string | undefined>): void {
  window.history.pushState(null, '', href(state));
  listener();
}

export function currentView(): View {
  return { params: new URLSearchParams(window.location.search) };
}

/** Calls `render` now, on back/forward, and on clicks of same-page console links. */
export function startRouter(render: Listener): void {
  listener = render;
  window.addEventListener('popstate', render);
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey)
      return;
    const link = (e.target as Element | null)?.closest?.('a');
    if (!link || link.target || link.hasAttribute('download')) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname !== window.location.pathname) return;
    e.preventDefault();
    window.history.pushState(null, '', url.search ? `./${url.search}` : './');
    render();
  });
  render();
}
