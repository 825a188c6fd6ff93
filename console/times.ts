/**
 * Times in the console, one format everywhere: relative ("3 min ago", "in 1 h 05 min") where a
 * glance matters, and the absolute time with its zone ("2026-11-28 11:02:03 CET") beside it or
 * on hover (the element's title also gives UTC). `<time datetime>` carries the exact instant.
 */
import { h } from './dom.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** The zone's short name in this browser ("UTC", "CET", "GMT+2"). */
function zoneOf(date: Date): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
    .formatToParts(date)
    .find((p) => p.type === 'timeZoneName');
  return part?.value ?? 'local';
}

/** `2026-11-28 11:02:03 CET`: the browser's local time with its zone. */
export function formatAbsolute(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneOf(d)}`;
}

/** A span of milliseconds: `850 ms`, `42 s`, `3 min 05 s`, `2 h 07 min`, `3 d 4 h`. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  const s = Math.floor(abs / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(s % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ${pad(m % 60)} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** `12 s ago` or `in 3 min 05 s`. */
export function formatRelative(iso: string, now: number = Date.now()): string {
  const ms = now - Date.parse(iso);
  if (Math.abs(ms) < 1000) return 'just now';
  return ms >= 0 ? `${formatSpan(ms)} ago` : `in ${formatSpan(-ms)}`;
}

/** A `<time>` showing the relative time; the absolute local and UTC times on hover. */
export function relativeTime(iso: string, now: number = Date.now()): HTMLTimeElement {
  return h(
    'time',
    { datetime: iso, title: `${formatAbsolute(iso)} (${iso})`, 'data-relative': '' },
    formatRelative(iso, now),
  );
}

/** A `<time>` showing the absolute time with its zone, and how long ago in parentheses. */
export function absoluteTime(iso: string, now: number = Date.now()): HTMLElement {
  return h(
    'span',
    {},
    h('time', { datetime: iso, title: iso }, formatAbsolute(iso)),
    ' (',
    h('time', { datetime: iso, 'data-relative': '' }, formatRelative(iso, now)),
    ')',
  );
}

/** Refreshes every relative time under `root` (a ticker calls it each second). */
export function refreshRelative(root: ParentNode, now: number = Date.now()): void {
  for (const el of root.querySelectorAll<HTMLTimeElement>('time[data-relative]')) {
    el.textContent = formatRelative(el.dateTime, now);
  }
}
