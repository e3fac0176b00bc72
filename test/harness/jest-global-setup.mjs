// Jest loads global setup outside its module system; tsx loads the TypeScript harness.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup(globalConfig, projectConfig) {
  const { default: setup } = await tsImport('./jest-global-setup.ts', import.meta.url);
  await setup(globalConfig, projectConfig);
}
