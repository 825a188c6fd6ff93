/**
 * `npm start` takes the emulators' ports as options (--bigtable-port, --pubsub-port), so that it
 * runs when 8085/8086 are taken; a taken or bad port is one line naming the option to use.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../shared/local/emulators.js';
import { runScript } from '../support/processes.js';

// No emulator variables: npm start would start its own emulators on the given ports.
const run = (args: string[]) => runScript('dist/scripts/start.js', args);

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
