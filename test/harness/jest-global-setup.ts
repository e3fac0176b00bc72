import { existsSync } from 'node:fs';
import { ClusterSet, readClusterSetInfo } from './clusters.js';

declare global {
  var __MCSA_CLUSTERS__: ClusterSet | undefined;
}

/**
 * Starts one set of real clusters for the whole integration run. With MCSA_TEST_CLUSTERS set to
 * the `clusters.json` of a running set (for example `npm run sandbox`), reuses it instead.
 */
export default async function globalSetup(): Promise<void> {
  const preset = process.env.MCSA_TEST_CLUSTERS;
  if (preset && existsSync(preset)) {
    const info = readClusterSetInfo(preset);
    process.stderr.write(`\nreusing clusters from ${preset} (${info.clusters.map((c) => c.name).join(', ')})\n`);
    return;
  }
  const count = Number(process.env.MCSA_TEST_CLUSTER_COUNT ?? 2);
  const set = await ClusterSet.start({ count, log: (m) => process.stderr.write(`[clusters] ${m}\n`) });
  globalThis.__MCSA_CLUSTERS__ = set;
  process.env.MCSA_TEST_CLUSTERS = set.statePath;
}
