/**
 * Request bodies are bounded before the functions framework parses them, on every function:
 * compressed bodies (gzip, deflate, br) that would inflate to hundreds of megabytes are refused
 * without being inflated, identity bodies past the function's limit are refused while they
 * arrive, and the function stays up with its memory flat. Memory is the child's peak resident
 * set (VmHWM in /proc/PID/status): the framework as it was inflated each bomb and parsed it, so
 * the peak rose by hundreds of megabytes.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { constants, createBrotliCompress, createDeflate, createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/service/runtime/config.js';
import { ensureTable } from '../../shared/service/store/bigtable/operation-store.js';
import { testEnv } from '../support/env.js';
import { type RunningFunction, startFunction } from '../support/functions.js';
import { type OperationsStack, startOperationsStack } from '../support/operations-stack.js';

/** What each bomb inflates to: far past every limit, small enough for a loaded machine. */
const INFLATED_BYTES = 96 * 1024 * 1024;
/** How much the peak resident set may grow over all the bombs sent to one function. */
const PEAK_GROWTH_MAX_BYTES = 24 * 1024 * 1024;

type Encoding = 'gzip' | 'deflate' | 'br';
const ENCODINGS: Encoding[] = ['gzip', 'deflate', 'br'];

/** A JSON object whose one string fills `size` bytes, compressed with `encoding`, built in chunks. */
async function bomb(encoding: Encoding, size: number): Promise<Buffer> {
  const compressor =
    encoding === 'gzip'
      ? createGzip({ level: 9 })
      : encoding === 'deflate'
        ? createDeflate({ level: 9 })
        : createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
  const out: Buffer[] = [];
  compressor.on('data', (chunk: Buffer) => out.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    compressor.once('end', resolve);
    compressor.once('error', reject);
  });
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  compressor.write('{"operationId":"bomb","pad":"');
  for (let written = 0; written < size; written += chunk.length) {
    if (!compressor.write(chunk)) await new Promise((r) => compressor.once('drain', r));
  }
  compressor.end('"}');
  await done;
  return Buffer.concat(out);
}

interface Answer {
  status: number;
  text: string;
}

/** One request with exactly these headers and body chunks (no content length when chunked). */
function send(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: Buffer[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.once('error', reject);
    });
    req.once('error', reject);
    const write = async () => {
      for (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    };
    void write().catch(reject);
  });
}

/** The child's peak resident set size in bytes (VmHWM). */
function peakRss(fn: RunningFunction): number {
  const status = readFileSync(`/proc/${fn.process.pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmHWM in /proc/${fn.process.pid}/status`);
  return Number(kb) * 1024;
}

function expectGoogleError(answer: Answer, statuses: number[]) {
  expect(statuses, answer.text.slice(0, 300)).toContain(answer.status);
  const body = JSON.parse(answer.text) as {
    error: { code: number; message: string; status: string };
  };
  expect(body.error.code).toBe(answer.status);
  expect(body.error.status).toBe('INVALID_ARGUMENT');
  expect(typeof body.error.message).toBe('string');
}

let bombs: Record<Encoding, Buffer>;
let api: OperationsStack;
let subscriber: RunningFunction;
let sweeper: RunningFunction;

beforeAll(async () => {
  const env = testEnv();
  await ensureTable(loadConfig(env));
  const built = await Promise.all(ENCODINGS.map((e) => bomb(e, INFLATED_BYTES)));
  bombs = { gzip: built[0] as Buffer, deflate: built[1] as Buffer, br: built[2] as Buffer };
  [api, subscriber, sweeper] = await Promise.all([
    startOperationsStack(),
    startFunction('subscriber', env),
    startFunction('sweeper', env),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.stop(), subscriber?.stop(), sweeper?.stop()]);
});

/** What each function is sent, and a request it must still answer afterwards. */
const targets = () =>
  [
    {
      fn: api.fn,
      paths: [
        ['POST', '/v1/operations'],
        ['GET', '/v1/operations'],
        ['POST', '/v1/operations/bomb:cancel'],
      ],
      alive: ['GET', '/v1/operations?pageSize=1', 200],
    },
    {
      fn: subscriber,
      paths: [['POST', '/']],
      alive: ['GET', '/', 405],
    },
    {
      fn: sweeper,
      paths: [['POST', '/']],
      alive: ['POST', '/', 200],
    },
  ] as const;

describe('compressed bodies', () => {
  it('bombs are small: each inflates to 96 MiB', () => {
    for (const e of ENCODINGS) expect(bombs[e].length).toBeLessThan(INFLATED_BYTES / 500);
  });

  for (const name of ['operations', 'subscriber', 'sweeper'] as const) {
    it(`${name}: gzip, deflate and br bombs get a 4xx in Google's shape, memory stays flat, the function answers afterwards`, async () => {
      const target = targets().find((t) => t.fn.target === name);
      if (!target) throw new Error(name);
      const [aliveMethod, alivePath, aliveStatus] = target.alive;
      expect((await send(target.fn.url, aliveMethod, alivePath, {}, [])).status).toBe(aliveStatus);
      const before = peakRss(target.fn);
      for (const [method, path] of target.paths) {
        for (const encoding of ENCODINGS) {
          const answer = await send(
            target.fn.url,
            method,
            path,
            {
              'content-type': 'application/json',
              'content-encoding': encoding,
              'content-length': String(bombs[encoding].length),
            },
            [bombs[encoding]],
          );
          expectGoogleError(answer, [413, 415]);
        }
      }
      const growth = peakRss(target.fn) - before;
      expect(growth, `peak RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(
        PEAK_GROWTH_MAX_BYTES,
      );
      expect(target.fn.process.exitCode).toBeNull();
      expect((await send(target.fn.url, aliveMethod, alivePath, {}, [])).status).toBe(aliveStatus);
    });
  }
});

/**
 * What a function holds of a body at most before refusing it: a Pub/Sub push for the subscriber
 * (defaults.pushBodyMaxBytes), an API request for the others (defaults.httpBodyMaxBytes).
 */
const HELD_MAX_BYTES = {
  operations: 256 * 1024,
  subscriber: 16 * 1024 * 1024,
  sweeper: 256 * 1024,
};
/** Past every limit, and within what a function reads and discards after refusing. */
const CHUNKED_BYTES = 18 * 1024 * 1024;

describe('identity bodies past the limit', () => {
  for (const name of ['operations', 'subscriber', 'sweeper'] as const) {
    it(`${name}: an 18 MiB chunked body and a declared 1 GiB one get 413 in Google's shape, memory stays flat`, async () => {
      const target = targets().find((t) => t.fn.target === name);
      if (!target) throw new Error(name);
      const [method, path] = target.paths[target.paths.length - 1] ?? ['POST', '/'];
      const [aliveMethod, alivePath, aliveStatus] = target.alive;
      expect((await send(target.fn.url, aliveMethod, alivePath, {}, [])).status).toBe(aliveStatus);
      const before = peakRss(target.fn);
      const piece = Buffer.alloc(1024 * 1024, 0x20);
      const chunked = await send(
        target.fn.url,
        method,
        path,
        { 'content-type': 'application/json' },
        [
          Buffer.from('{"pad":"'),
          ...Array.from({ length: CHUNKED_BYTES / piece.length }, () => piece),
        ],
      );
      expectGoogleError(chunked, [413]);
      const declared = await send(
        target.fn.url,
        method,
        path,
        { 'content-type': 'application/json', 'content-length': String(2 ** 30) },
        [Buffer.from('{"pad":"')],
      );
      expectGoogleError(declared, [413]);
      const growth = peakRss(target.fn) - before;
      expect(growth, `peak RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(
        HELD_MAX_BYTES[name] + PEAK_GROWTH_MAX_BYTES,
      );
      expect(target.fn.process.exitCode).toBeNull();
      expect((await send(target.fn.url, aliveMethod, alivePath, {}, [])).status).toBe(aliveStatus);
    });
  }
});
