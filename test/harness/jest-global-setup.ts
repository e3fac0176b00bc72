import { existsSync } from 'node:fs';
import { ClusterSet, readClusterSetInfo } from './clusters.js';

declare global {
  var __MCSA_CLUSTERS__: ClusterSet | undefined;
}

/**
 * Starts one set of real clusters for the whole integration run (with a node each for the `nodes` project). With MCSA_TEST_CLUSTERS set to
 * the `clusters.json` of a running set (for example `npm run sandbox`), reuses it instead.
 */
export default async function globalSetup(_globalConfig?: unknown, projectConfig?: { displayName?: string | { name?: string } }): Promise<void> {
  const project = typeof projectConfig?.displayName === 'string' ? projectConfig.displayName : projectConfig?.displayName?.name;
  // The `nodes` project (test/e2e/nodes) runs on clusters with real nodes and the built images.
  const nodes = project === 'nodes';
  const preset = process.env.MCSA_TEST_CLUSTERS;
  if (globalThis.__MCSA_CLUSTERS__) {
    throw new Error('the integration and nodes projects need different clusters: run them in separate Jest runs (--selectProjects), as scripts/test.sh does');
  }
  if (preset && existsSync(preset) && (readClusterSetInfo(preset).images !== undefined) === nodes) {
    const info = readClusterSetInfo(preset);
    process.stderr.write(`\nreusing clusters from ${preset} (${info.clusters.map((c) => c.name).join(', ')})\n`);
    return;
  }
  const count = Number(process.env.MCSA_TEST_CLUSTER_COUNT ?? 2);
  const set = await ClusterSet.start({ count, nodes, log: (m) => process.stderr.write(`[clusters] ${m}\n`) });
  globalThis.__MCSA_CLUSTERS__ = set;
  process.env.MCSA_TEST_CLUSTERS = set.statePath;
}
