/**
 * DOM building for the console. Every piece of text goes in through `textContent` or an
 * attribute set with setAttribute, never through HTML parsing, so whatever an operation's
 * metadata, a reason or an ID holds is shown as text and cannot become markup or script.
 */

export type Child = Node | string | number | false | null | undefined;
type Attributes = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/** `h('a', {href: '?x'}, 'text', child)`: an element with attributes, listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') {
      element.addEventListener(name.replace(/^on/, ''), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** Pretty JSON as text in a <pre>. */
export function json(value: unknown, label: string): HTMLPreElement {
  return h(
    'pre',
    { class: 'json', tabindex: 0, 'aria-label': label },
    JSON.stringify(value, null, 2),
  );
}

/** Says something to screen readers and shows it in the corner for a while. */
export function announce(text: string): void {
  const status = document.getElementById('status');
  if (!status) return;
  status.textContent = text;
  window.setTimeout(() => {
    if (status.textContent === text) status.textContent = '';
  }, 6000);
}

/** Asks for confirmation in the page's <dialog>; resolves true when confirmed. */
export function confirmAction(question: string, action: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement | null;
  const text = document.getElementById('confirm-text');
  const ok = document.getElementById('confirm-ok');
  if (!dialog || !text || !ok) return Promise.resolve(false);
  text.textContent = question;
  ok.textContent = action;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}
