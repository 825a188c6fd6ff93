/**
 * `npm run build && node dist/bench/bombs.js`: compressed request bodies against each function.
 * One gzip, one deflate and one br body, each inflating to BOMB_MIB of JSON, are sent to every
 * function under the functions framework; it prints, per function, each answer's status and
 * time and the function's peak resident set (VmHWM) before and after, in MiB. Uses the emulators
 * that BIGTABLE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST name, or starts its own.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { brotliCompressSync, constants, deflateSync, gzipSync } from 'node:zlib';
import { startFunction } from '../scripts/run-function.js';
import { freePort, startEmulators } from '../shared/local/emulators.js';

const BOMB_MIB = Number(process.env.BOMB_MIB ?? '96');

const text = Buffer.concat([
  Buffer.from('{"pad":"'),
  Buffer.alloc(BOMB_MIB * 2 ** 20, 'x'),
  Buffer.from('"}'),
]);
const bombs: [string, Buffer][] = [
  ['gzip', gzipSync(text, { level: 9 })],
  ['deflate', deflateSync(text, { level: 9 })],
  ['br', brotliCompressSync(text, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } })],
];

function peakMiB(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      res.resume();
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, ms: Math.round(performance.now() - started) }),
      );
    });
    req.once('error', reject);
    req.end(body);
  });
}

const emulators = await startEmulators();
const env = {
  GOOGLE_CLOUD_PROJECT: 'lro-bench',
  BIGTABLE_EMULATOR_HOST: emulators.bigtable,
  PUBSUB_EMULATOR_HOST: emulators.pubsub,
};
try {
  for (const [target, method, path] of [
    ['operations', 'GET', '/v1/operations'],
    ['subscriber', 'POST', '/'],
    ['sweeper', 'POST', '/'],
  ] as const) {
    const fn = await startFunction(target, env, await freePort());
    try {
      const pid = fn.process.pid as number;
      const before = peakMiB(pid);
      const answers: string[] = [];
      for (const [encoding, body] of bombs) {
        const { status, ms } = await send(
          `${fn.url}${path}`,
          method,
          {
            'content-type': 'application/json',
            'content-encoding': encoding,
            'content-length': String(body.length),
          },
          body,
        );
        answers.push(`${encoding} (${body.length} B) ${status} in ${ms} ms`);
      }
      const after = peakMiB(pid);
      const alive = fn.process.exitCode === null && fn.process.signalCode === null;
      process.stdout.write(
        `${target}: ${answers.join(', ')}; peak RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB; ${alive ? 'alive' : 'DEAD'}\n`,
      );
    } finally {
      await fn.stop();
    }
  }
} finally {
  await emulators.stop();
}
