export default async function globalTeardown(): Promise<void> {
  const set = globalThis.__MCSA_CLUSTERS__;
  if (set) {
    await set.stop();
    delete process.env.MCSA_TEST_CLUSTERS;
    globalThis.__MCSA_CLUSTERS__ = undefined;
  }
}
