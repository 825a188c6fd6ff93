import { defineConfig } from 'vitest/config';

/**
 * The tests in tiers that mirror the code, each runnable alone (`npm run test:<tier>`):
 * - unit: pure logic, no emulator;
 * - service: one module or one function against the emulators, over real HTTP;
 * - e2e: the whole system as a reader uses it (`npm start`, the CLI, the console, the docs, the
 *   packages);
 * - infra: the Terraform, the deploy artifact and the install on other platforms.
 * The fault tests (test/faults, `npm run test:faults`) have their own configuration.
 */
const withEmulators = (name: string) => ({
  extends: true as const,
  test: {
    name,
    include: [`test/${name}/**/*.test.ts`],
    globalSetup: ['test/support/global-setup.ts'],
  },
});

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      withEmulators('service'),
      withEmulators('e2e'),
      withEmulators('infra'),
    ],
  },
});
