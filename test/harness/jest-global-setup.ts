import { existsSync } from 'node:fs';
import { minorOf, supportedKubernetesVersions } from './binaries.js';
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
  const versions = testKubernetesVersions(project);
  if (versions) process.stderr.write(`\n[clusters] Kubernetes versions: ${versions.map((v, i) => `cluster${i + 1} ${v}`).join(', ')}\n`);
  const set = await ClusterSet.start({ count, nodes, versions, log: (m) => process.stderr.write(`[clusters] ${m}\n`) });
  globalThis.__MCSA_CLUSTERS__ = set;
  process.env.MCSA_TEST_CLUSTERS = set.statePath;
}

/**
 * The Kubernetes minor of each cluster: MCSA_TEST_K8S_VERSIONS (`1.37,1.35`: cluster1 on 1.37,
 * cluster2 on 1.35); for the `compat` project without it, the newest target with the oldest source.
 */
export function testKubernetesVersions(project: string | undefined): string[] | undefined {
  const asked = process.env.MCSA_TEST_K8S_VERSIONS;
  if (asked) return asked.split(',').map((v) => v.trim());
  if (project !== 'compat') return undefined;
  const all = supportedKubernetesVersions().map(minorOf);
  const versions = [all[all.length - 1]!, all[0]!];
  process.env.MCSA_TEST_K8S_VERSIONS = versions.join(',');
  return versions;
}
