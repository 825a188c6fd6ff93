/**
 * The web console in a real browser (Debian's chromium through puppeteer-core) against the
 * operations function and the subscriber on the run's emulators: the list and its filters, live
 * progress from :watch without a reload, cancel, the children tree, dead letters with replay,
 * keyboard use, a narrow window, and escaping of hostile metadata, reasons and IDs.
 *
 * UPDATE_SCREENSHOTS=1 also writes the screenshots shown in the README (docs/console-*.png).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterIdOf } from '../../shared/service/dead-letters/record.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import { BigtableOperationStore } from '../../shared/service/store/bigtable/operation-store.js';
import { type LaunchedBrowser, launchBrowser } from '../support/browser.js';
import { type EventStack, event, startEventStack, until } from '../support/event-stack.js';
import { ROOT, type RunningFunction, startFunction } from '../support/functions.js';
import { call } from '../support/operations-stack.js';

const TYPE = 'type.googleapis.com/acme.ExportProgress';
const OTHER_TYPE = 'type.googleapis.com/acme.ImportProgress';
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';
const WAIT = { timeout: 45_000 };

let s: EventStack;
let api: RunningFunction;
let deadLetters: DeadLetterStore;
let chromium: LaunchedBrowser;
let page: Page;
const dialogs: string[] = [];

beforeAll(async () => {
  s = await startEventStack({
    maxDeliveryAttempts: 5,
    minimumBackoffSeconds: 1,
    maximumBackoffSeconds: 1,
    messageOrdering: false,
  });
  api = await startFunction('operations', s.env);
  deadLetters = new DeadLetterStore(s.config);
  chromium = await launchBrowser();
  page = await chromium.browser.newPage();
  page.setDefaultTimeout(45_000);
  await page.setViewport({ width: 1280, height: 800 });
  // Any alert/confirm/prompt is a script the page did not mean to run.
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await deadLetters?.close();
  await api?.stop();
  await s?.close();
});

const progress = (percent: number, message?: string, type = TYPE) => ({
  '@type': type,
  percent,
  ...(message ? { message } : {}),
});

/** Opens the console with a query and waits until the page has rendered. */
async function open(query = ''): Promise<void> {
  await page.goto(`${api.url}/console/${query}`);
  await page.waitForSelector('body[data-ready]', WAIT);
}

/** Runs `action` (a click, a key) and waits until the console rendered the page it led to. */
async function rendered(action: () => Promise<unknown>): Promise<void> {
  const before = await page.evaluate(() => document.body.dataset.ready ?? '');
  await action();
  await page.waitForFunction(
    (previous) => (document.body.dataset.ready ?? '') !== previous,
    WAIT,
    before,
  );
}

async function listedNames(): Promise<string[]> {
  return page.$$eval('#operations tbody tr', (rows) =>
    rows.map((r) => r.getAttribute('data-name') ?? ''),
  );
}

async function screenshot(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: resolve(ROOT, 'docs', name) as `${string}.png` });
}

describe('operations list', () => {
  it('shows created operations with their state and progress, and filters them', async () => {
    const running = (await s.store.create({ metadata: progress(30, 'copying rows') })).operation;
    const other = (await s.store.create({ metadata: progress(5, 'reading', OTHER_TYPE) }))
      .operation;
    const succeeded = (await s.store.create({ metadata: progress(0) })).operation;
    await s.store.complete(succeeded.name, {
      response: { '@type': 'type.googleapis.com/acme.Done' },
    });
    const failed = (await s.store.create({ metadata: progress(70) })).operation;
    await s.store.complete(failed.name, { error: { code: 13, message: 'disk full' } });
    const cancelled = (await s.store.create({ metadata: progress(40) })).operation;
    await s.store.complete(cancelled.name, {
      error: { code: 1, message: 'cancelled by a person' },
    });
    const all = [running, other, succeeded, failed, cancelled].map((o) => o.name);

    await open();
    expect(await listedNames()).toEqual(expect.arrayContaining(all));
    const row = await page.$(`#operations tr[data-name="${running.name}"]`);
    expect(await row?.$eval('[data-state]', (e) => e.textContent)).toBe('RUNNING');
    expect(await row?.$eval('.progress', (e) => e.getAttribute('data-percent'))).toBe('30');
    expect(await row?.$eval('.progress', (e) => e.textContent)).toContain('copying rows');
    await screenshot('console-operations.png');

    const expected: Record<string, string[]> = {
      running: [running.name, other.name],
      succeeded: [succeeded.name],
      failed: [failed.name],
      cancelled: [cancelled.name],
    };
    for (const [state, names] of Object.entries(expected)) {
      await rendered(() => page.select('#f-state', state));
      expect(new URL(page.url()).searchParams.get('state')).toBe(state);
      expect((await listedNames()).filter((n) => all.includes(n)).sort()).toEqual(
        [...names].sort(),
      );
    }

    // A shared link opens the same filtered list.
    await open(`?type=${encodeURIComponent(OTHER_TYPE)}`);
    expect(await page.$eval('#f-type', (e) => (e as HTMLInputElement).value)).toBe(OTHER_TYPE);
    expect(await listedNames()).toEqual([other.name]);

    await open();
    await page.type('#f-name', succeeded.name.slice('operations/'.length));
    await rendered(() => page.keyboard.press('Enter'));
    expect(new URL(page.url()).searchParams.get('name')).toBe(
      succeeded.name.slice('operations/'.length),
    );
    expect(await listedNames()).toEqual([succeeded.name]);
  }, 120_000);

  it('pages through the list with the next-page link', async () => {
    const type = `type.googleapis.com/acme.Paged${randomUUID().slice(0, 8)}`;
    for (let i = 0; i < 27; i++) await s.store.create({ metadata: { '@type': type, percent: i } });
    await open(`?type=${encodeURIComponent(type)}`);
    const first = await listedNames();
    expect(first).toHaveLength(25);
    await rendered(() => page.click('#next-page'));
    expect(new URL(page.url()).searchParams.get('page')).toBeTruthy();
    const second = await listedNames();
    expect(second).toHaveLength(2);
    expect(second.filter((n) => first.includes(n))).toEqual([]);
  }, 120_000);
});

describe('one operation', () => {
  it('shows progress as the worker reports, without a reload, and cancel ends it CANCELLED', async () => {
    const { operation } = await s.store.create({ metadata: progress(10, 'starting') });
    const id = operation.name.slice('operations/'.length);
    await open(`?operation=${id}`);
    await page.waitForSelector('#summary .progress[data-percent="10"]', WAIT);
    await page.waitForFunction(
      () => document.getElementById('live')?.textContent?.startsWith('on'),
      WAIT,
    );
    await page.evaluate(() => {
      (window as unknown as { marker: string }).marker = 'no reload';
    });

    await s.publishEvent(event(operation.name, 'metadata', { metadata: progress(60, 'halfway') }));
    await page.waitForSelector('#summary .progress[data-percent="60"]', WAIT);
    expect(await page.$eval('#summary', (e) => e.textContent)).toContain('halfway');
    expect(await page.$eval('#metadata pre', (e) => e.textContent)).toContain('"percent": 60');

    await page.click('#cancel');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    await page.click('#confirm-ok');
    await until(
      async () => (await s.store.get(operation.name)).cancelRequestTime !== undefined,
      30_000,
      'the cancellation request',
    );
    // The worker hears of the request and ends the operation as cancelled.
    await s.publishEvent(
      event(operation.name, 'failed', { error: { code: 1, message: 'cancelled on request' } }),
    );
    await page.waitForSelector('#summary [data-state="CANCELLED"]', WAIT);
    expect(await page.$eval('#result pre', (e) => e.textContent)).toContain('cancelled on request');
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe(
      'no reload',
    );
    expect(await page.$eval('#cancel', (e) => (e as HTMLButtonElement).disabled)).toBe(true);
  }, 120_000);

  it('shows the parent as a link and the children as a tree; delete asks first', async () => {
    const parent = (
      await s.store.create({ metadata: progress(33, 'fan-out', 'type.googleapis.com/acme.Batch') })
    ).operation;
    const kids = [];
    for (const [i, p] of [100, 45, 0].entries()) {
      const child = (
        await s.store.create({ parent: parent.name, metadata: progress(p, `shard ${i + 1}`) })
      ).operation;
      kids.push(child);
    }
    await s.store.complete((kids[0] as { name: string }).name, {
      response: { '@type': 'type.googleapis.com/acme.Shard' },
    });
    const grandchild = (
      await s.store.create({
        parent: (kids[1] as { name: string }).name,
        metadata: progress(80, 'index'),
      })
    ).operation;

    await open(`?operation=${parent.name.slice('operations/'.length)}`);
    for (const name of [...kids.map((k) => k.name), grandchild.name]) {
      await page.waitForSelector(`#children li[data-name="${name}"]`, WAIT);
    }
    await page.waitForFunction(
      () => document.getElementById('parent')?.textContent?.includes('root'),
      WAIT,
    );
    await screenshot('console-operation.png');

    // The grandchild's page links back to its parent.
    await rendered(() => page.click(`#children li[data-name="${grandchild.name}"] > a`));
    await page.waitForSelector('#parent a', WAIT);
    expect(await page.$eval('#parent a', (e) => e.textContent)).toBe(
      (kids[1] as { name: string }).name,
    );

    await page.click('#delete');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    await page.click('dialog#confirm button[value="cancel"]');
    expect((await call(api.url, 'GET', `/v1/${grandchild.name}`)).status).toBe(200);
    await page.click('#delete');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    await rendered(() => page.click('#confirm-ok'));
    expect((await call(api.url, 'GET', `/v1/${grandchild.name}`)).status).toBe(404);
  }, 120_000);
});

describe('dead letters', () => {
  it('shows a dead-lettered event with its reason; after its operation is created, replay applies it', async () => {
    const id = `late-${randomUUID().slice(0, 8)}`;
    const name = `operations/${id}`;
    await s.publishEvent(
      event(name, 'succeeded', { response: { '@type': 'type.googleapis.com/acme.Done', rows: 7 } }),
    );
    let letter: { operation?: string; attributes: Record<string, string> } | undefined;
    await until(
      async () => {
        const reply = await call<{
          deadLetters: { operation?: string; attributes: Record<string, string> }[];
        }>(api.url, 'GET', '/v1/deadLetters');
        letter = reply.body.deadLetters.find((l) => l.operation === name);
        return letter !== undefined;
      },
      60_000,
      'the dead letter',
    );
    await open('?view=dead-letters');
    const row = `#dead-letters tr:has(a[href$="operation=${id}"])`;
    await page.waitForSelector(row, WAIT);
    expect(await page.$eval(`${row} .reason`, (e) => e.textContent)).toMatch(
      /^delivery attempts exhausted: .*not found/,
    );
    await screenshot('console-dead-letters.png');

    // A slow create: it began before the event was published (its create time says so), so the
    // event is this operation's; an operation created after the event never takes it.
    const published = Date.parse(
      letter?.attributes.CloudPubSubDeadLetterSourceTopicPublishTime ?? '',
    );
    expect(Number.isFinite(published)).toBe(true);
    const slowCreate = new BigtableOperationStore(s.config, () => published - 1);
    await slowCreate.create({ id });
    await slowCreate.close();
    await rendered(() => page.click(`${row} a[href*="deadLetter="]`));
    expect(new URL(page.url()).searchParams.get('deadLetter')).toMatch(/^\d{13}-/);
    expect(await page.$eval('main pre', (e) => e.textContent)).toContain('"rows": 7');
    await page.click('#replay');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    await rendered(() => page.click('#confirm-ok'));
    await until(
      async () => (await s.store.get(name)).operation.done,
      30_000,
      'the replayed event applied',
    );
    expect((await s.store.get(name)).operation.response).toMatchObject({ rows: 7 });
  }, 150_000);
});

describe('escaping', () => {
  it('shows hostile metadata, reasons and IDs as text, and nothing in them runs', async () => {
    const payload =
      '<img src=x onerror="window.pwned=(window.pwned||0)+1"></script><script>window.pwned=(window.pwned||0)+1</script>';
    const { operation } = await s.store.create({
      metadata: {
        '@type': 'type.googleapis.com/x<img/src=x/onerror=window.pwned=1>',
        message: payload,
        [payload]: payload,
      },
    });
    const time = new Date();
    const letterId = deadLetterIdOf(time, randomUUID());
    await deadLetters.put({
      id: letterId,
      reason: payload,
      operation: payload,
      data: Buffer.from(JSON.stringify({ operation: payload, note: payload })),
      attributes: { operation: payload, [payload]: payload },
      deadLetterTime: time,
    });
    const pages = [
      `?name=${operation.name.slice('operations/'.length)}`,
      `?operation=${operation.name.slice('operations/'.length)}`,
      '?view=dead-letters',
      `?view=dead-letters&deadLetter=${letterId}`,
    ];
    for (const query of pages) {
      await open(query);
      await page.waitForFunction(
        (text) => document.getElementById('main')?.textContent?.includes(text),
        WAIT,
        '<img src=x onerror=',
      );
      expect(await page.$$('main img, main script'), query).toHaveLength(0);
      expect(
        await page.evaluate(() => (window as unknown as { pwned?: number }).pwned),
        query,
      ).toBeUndefined();
    }
    expect(dialogs).toEqual([]);
  }, 120_000);
});

describe('keyboard and narrow windows', () => {
  it('reaches the dead letters with the keyboard alone', async () => {
    await open();
    let onLink = false;
    // Each page puts the focus on its heading; the sections are before it.
    await page.keyboard.down('Shift');
    for (let i = 0; i < 10 && !onLink; i++) {
      await page.keyboard.press('Tab');
      onLink = await page.evaluate(
        () => document.activeElement?.getAttribute('data-nav') === 'dead-letters',
      );
    }
    await page.keyboard.up('Shift');
    expect(onLink).toBe(true);
    await rendered(() => page.keyboard.press('Enter'));
    expect(new URL(page.url()).searchParams.get('view')).toBe('dead-letters');
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
  });

  it('fits a narrow window without sideways scrolling', async () => {
    const { operation } = await s.store.create({
      metadata: progress(50, 'a fairly long status message for a phone'),
    });
    await page.setViewport({ width: 400, height: 800 });
    try {
      for (const query of [
        '',
        `?operation=${operation.name.slice('operations/'.length)}`,
        '?view=dead-letters',
      ]) {
        await open(query);
        const overflow = await page.evaluate(
          () => document.documentElement.scrollWidth - window.innerWidth,
        );
        expect(overflow, query).toBeLessThanOrEqual(1);
      }
    } finally {
      await page.setViewport({ width: 1280, height: 800 });
    }
  });
});
