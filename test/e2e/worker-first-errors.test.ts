/**
 * A worker's first errors, as a newcomer meets them: the built @cloud-lro/worker in a process of
 * its own with a bare environment (no Google credentials, HOME without gcloud's). Without an
 * emulator and without credentials, open() rejects with one UNAUTHENTICATED line naming what to
 * set (not the client library's "Could not load the default credentials"); with an emulator, no
 * MetadataLookupWarning is printed (there is no metadata server to look for).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueSuffix } from '../support/env.js';
import { ROOT } from '../support/functions.js';

const WORKER = pathToFileURL(resolve(ROOT, 'packages/worker/dist/worker.js')).href;
const home = mkdtempSync(join(tmpdir(), 'lro-worker-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function runWorker(
  source: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    cwd: home,
    env: { PATH: process.env.PATH ?? '', HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

describe('a worker’s first errors', () => {
  it('without an emulator or credentials: one UNAUTHENTICATED line naming what to set', async () => {
    const run = await runWorker(
      `
      import { OperationReporter } from '${WORKER}';
      const config = {
        projectId: 'lro-local',
        pubsubEmulatorHost: process.env.PUBSUB_EMULATOR_HOST,
        topics: { events: 'lro-events', notifications: 'lro-notifications' },
      };
      try {
        await OperationReporter.open({ config, operation: 'first-run', connectTimeoutMs: 5000 });
        console.log('opened');
      } catch (err) {
        console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message }));
      }
      `,
      {},
    );
    expect(run.code, run.stderr).toBe(0);
    const error = JSON.parse(run.stdout.trim()) as { name: string; code: number; message: string };
    expect(error.name).toBe('LroError');
    expect(error.code).toBe(16); // UNAUTHENTICATED
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain('PUBSUB_EMULATOR_HOST');
    expect(error.message).toContain('gcloud auth application-default login');
    expect(error.message).not.toContain('Could not load the default credentials');
  }, 60_000);

  it('against the emulator: no MetadataLookupWarning', async () => {
    const emulators = inject('emulators');
    const topic = `lro-events-${uniqueSuffix()}`;
    const run = await runWorker(
      `
      import { Messaging, OperationReporter } from '${WORKER}';
      const config = {
        projectId: 'lro-test',
        pubsubEmulatorHost: process.env.PUBSUB_EMULATOR_HOST,
        topics: { events: '${topic}', notifications: 'unused' },
      };
      const messaging = new Messaging(config);
      await messaging.pubsub.createTopic('${topic}');
      const reporter = await OperationReporter.open({
        config,
        operation: 'quiet',
        topics: { notifications: false },
      });
      await reporter.progress({ '@type': 'type.googleapis.com/test.Progress', percent: 1 });
      await reporter.close();
      await messaging.pubsub.topic('${topic}').delete();
      await messaging.close();
      console.log('published');
      `,
      { PUBSUB_EMULATOR_HOST: emulators.pubsub },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('published');
    expect(run.stderr).not.toContain('MetadataLookupWarning');
  }, 60_000);
});
