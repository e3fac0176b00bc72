// Jest 30 in native ESM mode (client-node is ESM-only), transpiled by @swc/jest.
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
      module: { type: 'es6' },
      sourceMaps: 'inline',
    },
  ],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/e2e/*.test.ts'],
      globalSetup: '<rootDir>/test/harness/jest-global-setup.mjs',
      globalTeardown: '<rootDir>/test/harness/jest-global-teardown.mjs',
      setupFilesAfterEnv: ['<rootDir>/test/harness/jest-integration-setup.ts'],
      slowTestThreshold: 60,
    },
    // The e2e suite on real nodes: the global setup gives each cluster a kubelet and loads the built images.
    {
      ...common,
      displayName: 'nodes',
      testMatch: ['<rootDir>/test/e2e/nodes/**/*.test.ts'],
      globalSetup: '<rootDir>/test/harness/jest-global-setup.mjs',
      globalTeardown: '<rootDir>/test/harness/jest-global-teardown.mjs',
      setupFilesAfterEnv: ['<rootDir>/test/harness/jest-integration-setup.ts'],
      slowTestThreshold: 120,
    },
  ],
};
