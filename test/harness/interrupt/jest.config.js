// A Jest run that starts real clusters and then blocks, for the interruption test
// (test/integration/interrupt.test.ts). Not part of the normal suite.
import base from '../../../jest.config.js';

const integration = base.projects.find((p) => p.displayName === 'integration');
export default {
  ...integration,
  rootDir: '../../..',
  displayName: 'interrupt',
  testMatch: ['<rootDir>/test/harness/interrupt/blocker.test.ts'],
};
