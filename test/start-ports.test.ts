/**
 * `npm start` takes the emulators' ports as options (--bigtable-port, --pubsub-port), so that it
 * runs when 8085/8086 are taken; a taken or bad port is one line naming the option to use.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../shared/local/emulators.js';
import { ROOT } from './support/functions.js';

const START = resolve(ROOT, 'dist/scripts/start.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [START, ...args], {
    cwd: ROOT,
    // No emulator variables: npm start would start its own emulators on the given ports.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((r) => child.once('exit', (code) => r({ code, stdout, stderr })));
}

describe('npm start emulator ports', () => {
  it('a taken emulator port is one line naming --bigtable-port / --pubsub-port', async () => {
    for (const option of ['--bigtable-port', '--pubsub-port']) {
      const taken = await freePort();
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', () => r()));
      try {
        const apiPort = await freePort();
        const { code, stderr } = await run([
          '--port',
          String(apiPort),
          '--subscriber-port',
          String(await freePort()),
          // The other emulator's port is free, whatever else runs on this machine.
          option === '--bigtable-port' ? '--pubsub-port' : '--bigtable-port',
          String(await freePort()),
          option,
          String(taken),
        ]);
        expect(code).not.toBe(0);
        const lines = stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`port ${taken} is already in use`);
        expect(lines[0]).toContain(`${option} N`);
      } finally {
        await new Promise((r) => blocker.close(r));
      }
    }
  });

  it('a bad emulator port is a usage error (exit 2) naming the option', async () => {
    const { code, stderr } = await run(['--bigtable-port', '0x1f90']);
    expect(code).toBe(2);
    expect(stderr).toContain('--bigtable-port must be a port number');
  });
});
