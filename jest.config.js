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
    // The e2e journeys on clusters of different Kubernetes versions (MCSA_TEST_K8S_VERSIONS, e.g.
    // `1.37,1.35`: cluster1 on 1.37, cluster2 on 1.35; by default the newest target with the oldest source).
    {
      ...common,
      displayName: 'compat',
      testMatch: ['<rootDir>/test/e2e/journeys.test.ts', '<rootDir>/test/e2e/versions.test.ts'],
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
