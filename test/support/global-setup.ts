/**
 * Starts the emulators once for the whole run (or reuses those named by BIGTABLE_EMULATOR_HOST
 * and PUBSUB_EMULATOR_HOST) and hands their addresses to the tests.
 */
import type { TestProject } from 'vitest/node';
import { type EmulatorHosts, startEmulators } from '../../shared/local/emulators.js';

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: EmulatorHosts;
  }
}

export default async function setup(project: TestProject) {
  const emulators = await startEmulators();
  project.provide('emulators', { bigtable: emulators.bigtable, pubsub: emulators.pubsub });
  return async () => {
    await emulators.stop();
  };
}
