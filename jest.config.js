/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.tsx?$': ['@swc/jest'] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  // Integration tests share one machine's Postgres clusters and two cores: one file at a time.
  maxWorkers: 1,
  testSequencer: '<rootDir>/test/helpers/sequencer.js',
  testTimeout: 600000,
};
