/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
    // @kubernetes/client-node v1 and some of its dependencies ship ES modules only; Node 20.20 require()s them,
    // jest's module loader does not, so swc turns those (and only those) into CommonJS.
    '^.+\\.m?js$': ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@kubernetes/client-node|jsonpath-plus|@jsep-plugin|jsep|openid-client|jose|oauth4webapi|rfc4648|ms)/)'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  // Integration tests share one machine's Postgres clusters and two cores: one file at a time.
  maxWorkers: 1,
  testSequencer: '<rootDir>/test/helpers/sequencer.js',
  testTimeout: 600000,
};
