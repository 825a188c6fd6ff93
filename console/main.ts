/**
 * The web console: plain DOM code compiled from TypeScript, no framework. Three pages (the
 * operations list, one operation, the dead letters) need a router, a few DOM helpers and fetch;
 * a framework would add a build step, a bundle and its own escaping rules for no gain here, and
 * building nodes with textContent keeps every user value text (see dom.ts).
 */
import { renderDeadLetters } from './dead-letters.js';
import { renderList, renderOperation } from './operations.js';
import { currentView, startRouter } from './router.js';

let stopLive: () => void = () => {};
let generation = 0;

async function render(): Promise<void> {
  const main = document.getElementById('main');
  if (!main) return;
  stopLive();
  stopLive = () => {};
  const mine = ++generation;
  const view = currentView();
  const operation = view.params.get('operation');
  const section = operation
    ? 'operations'
    : view.params.get('view') === 'dead-letters'
      ? 'dead-letters'
      : 'operations';
  for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (operation) {
    document.title = `operations/${operation} · cloud-lro console`;
    const stop = await renderOperation(main, operation);
    if (mine === generation) stopLive = stop;
    else stop();
  } else if (section === 'dead-letters') {
    document.title = 'Dead letters · cloud-lro console';
    await renderDeadLetters(main, view);
  } else {
    document.title = 'Operations · cloud-lro console';
    const stop = await renderList(main, view);
    if (mine === generation) stopLive = stop;
    else stop();
  }
  if (mine === generation) {
    main.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
    document.body.dataset.ready = String(mine);
  }
}

startRouter(() => {
  void render();
});
