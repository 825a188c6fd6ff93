/**
 * `lro dead-letters` and `lro console` (dist/bin/lro.js) against a subscriber and an API on the
 * run's emulators: listing, showing, replaying (one and all), discarding, exit codes, and the
 * console proxy serving the console and streaming the API through it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterIdOf } from '../../shared/service/dead-letters/record.js';
import { DeadLetterStore } from '../../shared/service/store/bigtable/dead-letters.js';
import { spawnLro } from '../support/cli.js';
import {
  type EventStack,
  event,
  progress,
  startEventStack,
  until,
} from '../support/event-stack.js';
import { type RunningFunction, startFunction } from '../support/functions.js';

let s: EventStack;
let api: RunningFunction;
let store: DeadLetterStore;

beforeAll(async () => {
  s = await startEventStack({
    messageOrdering: false,
    minimumBackoffSeconds: 1,
    maximumBackoffSeconds: 1,
  });
  api = await startFunction('operations', s.env);
  store = new DeadLetterStore(s.config);
});

afterAll(async () => {
  await api?.stop();
  await store?.close();
  await s?.close();
});

const lro = (...args: string[]) => spawnLro(args, api.url).done;

/** An entry holding a valid event for `name`, as the store keeps it. */
async function putEvent(name: string, value: number): Promise<string> {
  const time = new Date();
  const id = deadLetterIdOf(time, randomUUID());
  const body = event(name, 'succeeded', { response: progress(value) });
  await store.put({
    id,
    reason: 'delivery attempts exhausted: test',
    operation: name,
    data: Buffer.from(JSON.stringify(body)),
    attributes: {
      operation: name,
      type: 'succeeded',
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
    },
    deadLetterTime: time,
  });
  return id;
}

describe('lro dead-letters', () => {
  it('lists and shows a dead-lettered event, as text and as JSON', async () => {
    const operation = `operations/${randomUUID()}`;
    await s.messaging.publish(s.config.topics.events, Buffer.from('{not json'), {
      attributes: { operation },
    });
    let listed: { deadLetters: { name: string; operation?: string; reason: string }[] } | undefined;
    await until(
      async () => {
        const r = await lro('dead-letters', 'list', '--json');
        listed = JSON.parse(r.stdout) as typeof listed;
        return listed?.deadLetters.some((l) => l.operation === operation) === true;
      },
      40_000,
      'the dead letter in lro dead-letters',
    );
    const letter = listed?.deadLetters.find((l) => l.operation === operation);
    expect(letter?.reason).toMatch(/JSON/i);
    const id = letter?.name.slice('deadLetters/'.length) ?? '';

    const text = await lro('dead-letters');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ID\s+TIME\s+OPERATION\s+REASON/);
    expect(text.stdout).toContain(id);
    expect(text.stdout).toContain(operation);

    const shown = await lro('dead-letters', 'get', `deadLetters/${id}`);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`reason     ${letter?.reason}`);
    expect(shown.stdout).toContain('data (base64)');
    const json = await lro('dead-letters', 'get', id, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ name: `deadLetters/${id}`, operation });

    const discarded = await lro('dead-letters', 'discard', id);
    expect(discarded).toMatchObject({ code: 0, stdout: `discarded deadLetters/${id}\n` });
    const gone = await lro('dead-letters', 'get', id, '--json');
    expect(gone.code).toBe(4);
    expect(JSON.parse(gone.stdout).error.status).toBe('NOT_FOUND');
  }, 90_000);

  it('replays one entry, then all of them, and the events are applied', async () => {
    const names = [0, 1, 2].map(() => `operations/${randomUUID()}`);
    for (const name of names) await s.store.create({ id: name.slice('operations/'.length) });
    const one = await putEvent(names[0] as string, 0);
    const replayed = await lro('dead-letters', 'replay', one);
    expect(replayed).toMatchObject({ code: 0, stdout: `replayed deadLetters/${one}\n` });
    await putEvent(names[1] as string, 1);
    await putEvent(names[2] as string, 2);
    const all = await lro('dead-letters', 'replay', '--all', '--json');
    expect(all.code).toBe(0);
    const summary = JSON.parse(all.stdout) as { replayed: string[]; failed: unknown[] };
    expect(summary.failed).toEqual([]);
    expect(summary.replayed.length).toBeGreaterThanOrEqual(2);
    for (const [i, name] of names.entries()) {
      await until(async () => (await s.store.get(name)).operation.done, 30_000, `${name} done`);
      expect((await s.store.get(name)).operation.response).toEqual(progress(i));
    }
  }, 90_000);

  it('exits 2 on bad command lines', async () => {
    for (const args of [
      ['dead-letters', 'get'],
      ['dead-letters', 'get', 'not-an-id'],
      ['dead-letters', 'explode'],
      ['dead-letters', 'replay', '1234567890123-1', '--all'],
      ['dead-letters', 'list', '--page-size', 'many'],
      ['console', '--port', 'x'],
    ]) {
      const r = await lro(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^lro: /);
    }
    const help = await lro('dead-letters', '--help');
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain('replay --all');
  });
});

describe('lro console', () => {
  it('serves the console and the API through a local proxy, server-sent events included', async () => {
    const proxy = spawnLro(['console', '--port', '0'], api.url);
    try {
      await until(
        () => /console: (\S+)/.test(proxy.output().stdout),
        15_000,
        'the console address',
      );
      const consoleUrl = /console: (\S+)/.exec(proxy.output().stdout)?.[1] ?? '';
      expect(consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/console\/$/);
      const page = await fetch(consoleUrl);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('<main id="main"');
      const base = consoleUrl.replace(/\/console\/$/, '');

      const created = await fetch(`${base}/v1/operations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: progress(1) }),
      });
      expect(created.status).toBe(200);
      const op = (await created.json()) as { name: string };
      const watch = await fetch(`${base}/v1/${op.name}:watch`);
      expect(watch.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = (watch.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('event: operation');
      await reader.cancel();
      const missing = await fetch(`${base}/v1/operations/absent-one`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { status: string } }).error.status).toBe(
        'NOT_FOUND',
      );
    } finally {
      proxy.child.kill('SIGINT');
      await proxy.done;
    }
  });
});
