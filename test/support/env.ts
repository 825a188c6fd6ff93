/** Per-test configuration: the run's emulators and uniquely named table and topics. */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { type Config, loadConfig } from '../../shared/service/runtime/config.js';

/** A short unique suffix for resource names of one test. */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** The environment of a test stack: emulator hosts and names unique to this call. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const emulators = inject('emulators');
  const suffix = uniqueSuffix();
  return {
    GOOGLE_CLOUD_PROJECT: 'lro-test',
    LRO_BIGTABLE_INSTANCE: 'lro',
    LRO_BIGTABLE_TABLE: `operations-${suffix}`,
    LRO_EVENTS_TOPIC: `lro-events-${suffix}`,
    LRO_NOTIFICATIONS_TOPIC: `lro-notifications-${suffix}`,
    LRO_DEAD_LETTER_TOPIC: `lro-events-dead-letter-${suffix}`,
    LRO_WAKEUPS_TOPIC: `lro-wakeups-${suffix}`,
    BIGTABLE_EMULATOR_HOST: emulators.bigtable,
    PUBSUB_EMULATOR_HOST: emulators.pubsub,
    // Where npm start (dist/scripts/start.js) records what it runs.
    LRO_DATA_DIR: join(tmpdir(), `lro-test-data-${suffix}`),
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}
