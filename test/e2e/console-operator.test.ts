/**
 * The console's operator views in a real browser (Debian's chromium through puppeteer-core),
 * against the operations function and the subscriber on the run's emulators, at 1280 px and
 * 400 px: the list newest first with created, last update and duration, the match count (capped
 * "1,000+"), live refresh that keeps the page and the focus, the name-prefix box; one
 * operation's times, deadline countdown, heartbeat freshness, pending cancellation and event
 * history; no empty progress bars, no Cancel on a done operation, a plain word for a missing
 * operation, one time format with its zone, and no 404 (favicon) on any page.
 */
import { randomUUID } from 'node:crypto';
import type { HTTPResponse, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterIdOf } from '../../shared/service/dead-letters/record.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { type LaunchedBrowser, launchBrowser } from '../support/browser.js';
import { type EventStack, event, startEventStack, until } from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

const WAIT = { timeout: 45_000 };
const WIDTHS = [1280, 400] as const;

let s: EventStack;
let api: RunningFunction;
let chromium: LaunchedBrowser;
let page: Page;
const notFound: string[] = [];

beforeAll(async () => {
  s = await startEventStack({ messageOrdering: false });
  api = await startFunction('operations', s.env);
  chromium = await launchBrowser();
  page = await chromium.browser.newPage();
  page.setDefaultTimeout(45_000);
  await page.setViewport({ width: 1280, height: 900 });
  page.on('response', (response: HTTPResponse) => {
    // API answers of 404 are the pages' own business; files of the page must all be there.
    if (response.status() === 404 && !new URL(response.url()).pathname.startsWith('/v1/')) {
      notFound.push(response.url());
    }
  });
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await api?.stop();
  await s?.close();
});

const typeUrl = () => `type.googleapis.com/acme.Op${randomUUID().slice(0, 8)}`;

async function open(query = ''): Promise<void> {
  await page.goto(`${api.url}/console/${query}`);
  await page.waitForSelector('body[data-ready]', WAIT);
}

async function listedNames(): Promise<string[]> {
  return page.$$eval('#operations tbody tr', (rows) =>
    rows.map((r) => r.getAttribute('data-name') ?? ''),
  );
}

async function overflow(): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** Creates an operation as if at `ms` (the store's clock). */
async function createAt(ms: number, options: Parameters<BigtableOperationStore['create']>[0]) {
  const clocked = new BigtableOperationStore(s.config, () => ms);
  try {
    return (await clocked.create(options)).operation;
  } finally {
    await clocked.close();
  }
}

describe('the list', () => {
  for (const width of WIDTHS) {
    it(`shows newest first with created, last update and duration, and the match count (${width} px)`, async () => {
      await page.setViewport({ width, height: 900 });
      const type = typeUrl();
      const now = Date.now();
      const old = await createAt(now - 3 * 3600_000, { metadata: { '@type': type, percent: 10 } });
      const mid = await createAt(now - 5 * 60_000, { metadata: { '@type': type } });
      const fresh = await createAt(now - 2_000, { metadata: { '@type': type, percent: 50 } });
      await s.store.complete(old.name, { response: { '@type': 'type.googleapis.com/acme.Done' } });

      await open(`?type=${encodeURIComponent(type)}`);
      expect(await listedNames()).toEqual([fresh.name, mid.name, old.name]);
      expect(await page.$eval('#match-count', (e) => e.textContent)).toBe(
        '3 operations match, newest first',
      );
      const cell = (name: string, column: string) =>
        page.$eval(`#operations tr[data-name="${name}"] td.${column}`, (e) => ({
          text: e.textContent ?? '',
          title: e.querySelector('time')?.getAttribute('title') ?? '',
        }));
      expect((await cell(old.name, 'created')).text).toBe('3 h 00 min ago');
      // The absolute time with its zone (and UTC) on hover, one format everywhere.
      expect((await cell(old.name, 'created')).title).toMatch(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/,
      );
      // Created 5 min before `now`: the page shows 5 min and the seconds passed since, which
      // three store clients, the page load and a loaded machine can make more than 9.
      const midCreated = (await cell(mid.name, 'created')).text;
      const elapsedS = Math.ceil((Date.now() - now) / 1000);
      const seconds = /^5 min (\d\d) s ago$/.exec(midCreated)?.[1];
      expect(seconds, midCreated).toBeDefined();
      expect(Number(seconds)).toBeLessThanOrEqual(elapsedS);
      expect((await cell(old.name, 'duration')).text).toMatch(/^3 h 00 min$/);
      expect((await cell(fresh.name, 'duration')).text).toBe('');
      expect((await cell(old.name, 'updated')).text).toMatch(/^(just now|\d+ s ago)$/);
      // Without a percentage: the words, not an empty bar and "?".
      const noPercent = await page.$eval(
        `#operations tr[data-name="${mid.name}"] .progress`,
        (e) => ({
          text: e.textContent,
          bars: e.querySelectorAll('progress').length,
        }),
      );
      expect(noPercent).toEqual({ text: 'no progress reported', bars: 0 });
      expect(await overflow()).toBeLessThanOrEqual(1);
      // The tab's icon is the console's own (no request for a missing /favicon.ico).
      const icon = await page.$eval('link[rel="icon"]', (e) => (e as HTMLLinkElement).href);
      const served = await fetch(icon);
      expect([served.status, served.headers.get('content-type')]).toEqual([200, 'image/svg+xml']);
      expect(notFound).toEqual([]);
    }, 120_000);
  }

  it('refreshes live: new operations appear, states change, the page and the focus stay', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    const type = typeUrl();
    const base = Date.now() - 60_000;
    const ops = [];
    for (let i = 0; i < 27; i++) {
      ops.push(await createAt(base + i, { metadata: { '@type': type, percent: i } }));
    }
    await open(`?type=${encodeURIComponent(type)}`);
    expect(await listedNames()).toHaveLength(25);
    expect(await page.$eval('#match-count', (e) => e.textContent)).toBe(
      '27 operations match, newest first',
    );
    // A new operation appears at the top of the first page, with the focus kept on a row.
    const focusedName = (await listedNames())[3] as string;
    await page.focus(`#operations tr[data-name="${focusedName}"] a`);
    const newest = (await s.store.create({ metadata: { '@type': type, percent: 1 } })).operation;
    await page.waitForSelector(
      `#operations tbody tr:first-child[data-name="${newest.name}"]`,
      WAIT,
    );
    expect(
      await page.evaluate(() => document.activeElement?.closest('tr')?.getAttribute('data-name')),
    ).toBe(focusedName);
    expect(await page.$eval('#match-count', (e) => e.textContent)).toBe(
      '28 operations match, newest first',
    );

    // On the second page, a state change shows without leaving it.
    await page.click('#next-page');
    await page.waitForFunction(() => new URL(window.location.href).searchParams.has('page'), WAIT);
    await page.waitForSelector('#operations tbody tr', WAIT);
    const second = await listedNames();
    expect(second).toHaveLength(3);
    const target = second[1] as string;
    const url = page.url();
    await s.store.complete(target, { error: { code: 13, message: 'disk full' } });
    await page.waitForSelector(`#operations tr[data-name="${target}"] [data-state="FAILED"]`, WAIT);
    expect(page.url()).toBe(url);
  }, 120_000);

  it('counts exactly up to 1,000, then says "1,000+"', async () => {
    const type = typeUrl();
    const ids = Array.from({ length: 1001 }, (_, i) => `many-${type.slice(-8).toLowerCase()}-${i}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < ids.length) {
          const id = ids[next++] as string;
          await s.store.create({ id, metadata: { '@type': type } });
        }
      }),
    );
    await open(`?type=${encodeURIComponent(type)}`);
    expect(await page.$eval('#match-count', (e) => e.textContent)).toBe(
      '1,000+ operations match, newest first',
    );
    await s.store.delete(`operations/${ids[0]}`);
    await open(`?type=${encodeURIComponent(type)}`);
    expect(await page.$eval('#match-count', (e) => e.textContent)).toBe(
      '1,000 operations match, newest first',
    );
  }, 180_000);

  it('finds operations by the start of their name', async () => {
    const prefix = `pfx-${randomUUID().slice(0, 6)}`;
    for (const n of [1, 2, 3]) await s.store.create({ id: `${prefix}-${n}` });
    await s.store.create({ id: `${prefix}x` });
    await open();
    await page.type('#f-name', `${prefix}-`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      (p) => new URL(window.location.href).searchParams.get('name') === p,
      WAIT,
      `${prefix}-`,
    );
    await page.waitForFunction(
      () => document.getElementById('match-count')?.textContent?.startsWith('3 '),
      WAIT,
    );
    expect((await listedNames()).sort()).toEqual([1, 2, 3].map((n) => `operations/${prefix}-${n}`));
  }, 120_000);
});

describe('one operation', () => {
  for (const width of WIDTHS) {
    it(`shows its times, deadline countdown, heartbeat freshness, pending cancellation and history (${width} px)`, async () => {
      await page.setViewport({ width, height: 900 });
      const { operation } = await s.store.create({
        metadata: { '@type': typeUrl(), percent: 5 },
        deadline: new Date(Date.now() + 2 * 3600_000),
        heartbeatTimeoutMs: 60_000,
      });
      const id = operation.name.slice('operations/'.length);
      await s.publishEvent(
        event(operation.name, 'metadata', { metadata: { '@type': typeUrl(), percent: 40 } }),
      );
      await until(
        async () => (await s.store.get(operation.name)).operation.metadata?.percent === 40,
        30_000,
        'the progress applied',
      );
      await s.publishEvent(event(operation.name, 'heartbeat', {}));
      await until(
        async () =>
          (await s.store.history(operation.name)).events.some((e) => e.outcome === 'HEARTBEAT'),
        30_000,
        'a heartbeat applied',
      );
      await s.store.requestCancel(operation.name);

      await open(`?operation=${id}`);
      await page.waitForSelector('#time-created time[title]', WAIT);
      expect(await page.$eval('#time-deadline', (e) => e.textContent)).toMatch(
        /— 1 h 59 min left$/,
      );
      expect(await page.$eval('#time-heartbeat', (e) => e.textContent)).toMatch(
        /^last heartbeat (just now|\d+ s ago), timeout 1 min 00 s$/,
      );
      expect(
        await page.$eval('#time-heartbeat [data-fresh]', (e) => e.getAttribute('data-fresh')),
      ).toBe('true');
      expect(await page.$eval('#time-cancel', (e) => e.textContent)).toMatch(
        /^requested at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(.+\); the worker has not ended the operation yet$/,
      );
      await page.waitForFunction(() => document.querySelectorAll('#history li').length >= 4, WAIT);
      const outcomes = await page.$$eval('#history li', (items) =>
        items.map((li) => li.getAttribute('data-outcome')),
      );
      expect(outcomes).toEqual(['CANCEL', 'HEARTBEAT', 'APPLIED', 'CREATED']);
      expect(await page.$eval('#cancel', (e) => (e as HTMLButtonElement).hidden)).toBe(false);
      expect(await overflow()).toBeLessThanOrEqual(1);

      // The worker ends it: the page says when, Cancel goes, the history grows, live.
      await s.publishEvent(
        event(operation.name, 'failed', { error: { code: 1, message: 'stopped on request' } }),
      );
      await page.waitForSelector('#summary [data-state="CANCELLED"]', WAIT);
      await page.waitForSelector('#time-ended', WAIT);
      expect(await page.$eval('#time-ended', (e) => e.textContent)).toMatch(/, after .+$/);
      expect(await page.$eval('#cancel', (e) => (e as HTMLButtonElement).hidden)).toBe(true);
      expect(await page.$eval('#time-cancel', (e) => e.textContent)).not.toContain('not ended');
      // The page fetches the history again after the change it was told of; the metadata entry
      // is there already, so wait for the new one, not for any applied entry.
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('#history li strong')].some(
            (e) => e.textContent === 'failed',
          ),
        WAIT,
      );
      expect(
        await page.$$eval('#history li strong', (items) => items.map((e) => e.textContent)),
      ).toEqual(['failed', 'metadata']);
      expect(await overflow()).toBeLessThanOrEqual(1);
      expect(notFound).toEqual([]);
    }, 120_000);
  }

  it('opens a done operation without a Cancel button', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    const { operation } = await s.store.create({});
    await s.store.complete(operation.name, { response: { '@type': 'type.googleapis.com/x.Y' } });
    await open(`?operation=${operation.name.slice('operations/'.length)}`);
    await page.waitForSelector('#time-ended', WAIT);
    expect(await page.$eval('#cancel', (e) => (e as HTMLButtonElement).hidden)).toBe(true);
    expect(await page.$eval('#time-expire', (e) => e.textContent)).toMatch(/\(in 29 d 23 h\)$/);
  });

  it('says plainly when the operation does not exist, also from a dead letter', async () => {
    const id = `gone-${randomUUID().slice(0, 8)}`;
    await open(`?operation=${id}`);
    expect(await page.$eval('#missing', (e) => e.textContent)).toBe(
      `operations/${id} does not exist: it was never created, or it was deleted, or it ended longer ago than the retention.`,
    );
    const letters = new DeadLetterStore(s.config);
    const time = new Date();
    const letterId = deadLetterIdOf(time, randomUUID());
    try {
      await letters.put({
        id: letterId,
        reason: 'delivery attempts exhausted: operation not found',
        operation: `operations/${id}`,
        data: Buffer.from('{}'),
        attributes: {},
        deadLetterTime: time,
      });
      await open('?view=dead-letters');
      const listed = await page.$eval(
        `#dead-letters tr[data-name="deadLetters/${letterId}"] td`,
        (e) => e.querySelector('time')?.getAttribute('title') ?? '',
      );
      expect(listed).toBe(time.toISOString());
      await open(`?view=dead-letters&deadLetter=${letterId}`);
      await page.waitForSelector('#operation-missing', WAIT);
      expect(await page.$$('#letter-operation a')).toHaveLength(0);
      expect(await page.$eval('#letter-operation', (e) => e.textContent)).toContain(
        'This operation does not exist',
      );
    } finally {
      await letters.close();
    }
    expect(notFound).toEqual([]);
  });
});
