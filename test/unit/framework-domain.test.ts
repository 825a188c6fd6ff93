/**
 * The functions framework runs each request inside a Node.js domain; the functions' handlers
 * leave it before their work (shared/service/http/framework-domain.ts), so the promises and callbacks
 * of the Bigtable and Pub/Sub clients are not tagged with it. Served by the real framework.
 */
import type { AddressInfo } from 'node:net';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { describe, expect, it } from 'vitest';
import { leaveFrameworkDomain } from '../../shared/service/http/framework-domain.js';

const inDomain = () => (process as { domain?: unknown }).domain != null;

functions.http('domain-probe', async (req, res) => {
  const before = inDomain();
  if (req.query.leave === '1') leaveFrameworkDomain();
  let timerCallback = false;
  await new Promise<void>((resolve) =>
    setTimeout(() => {
      timerCallback = inDomain();
      resolve();
    }, 1),
  );
  const afterAwait = inDomain();
  res.json({ before, timerCallback, afterAwait });
});

async function probe(leave: boolean) {
  const server = getTestServer('domain-probe');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/?leave=${leave ? 1 : 0}`);
    return (await res.json()) as { before: boolean; timerCallback: boolean; afterAwait: boolean };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('leaving the functions framework’s domain', () => {
  it('the framework runs a request in a domain, and its timers and promises stay in it', async () => {
    expect(await probe(false)).toEqual({ before: true, timerCallback: true, afterAwait: true });
  });

  it('after leaveFrameworkDomain, timers and promises the handler starts run outside it', async () => {
    expect(await probe(true)).toEqual({ before: true, timerCallback: false, afterAwait: false });
  });
});
