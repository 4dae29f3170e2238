import { defineConfig } from 'vitest/config';

/**
 * Three groups, one after another (vitest's `sequence.groupOrder`):
 * 0. unit tests;
 * 1. the integration files that keep to their own topics, groups, prefixes and fault injectors
 *    (proxies in front of the shared stack, never its processes), two files at a time: most of
 *    their time is spent waiting on real durations (minutes of black-holed S3), so two fit on the
 *    2 cores beside the stack;
 * 2. the files that stop or restart the shared stack itself, alone, one after another.
 */
const integration = {
  globalSetup: ['test/support/global-setup.ts'],
  setupFiles: ['test/support/known-warnings.ts'],
  testTimeout: 240_000,
  hookTimeout: 240_000,
};
const STACK_FAULTS = ['test/integration/outages.test.ts', 'test/integration/broker-outage.test.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/lint.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: STACK_FAULTS,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          ...integration,
        },
      },
      { test: { name: 'integration-stack-faults', include: STACK_FAULTS, fileParallelism: false, sequence: { groupOrder: 2 }, ...integration } },
    ],
  },
});
