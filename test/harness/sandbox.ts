// `npm run sandbox`: starts real local clusters and keeps them up until Ctrl-C.
import { ClusterSet } from './clusters.js';

const count = Number(process.env.MCSA_SANDBOX_CLUSTERS ?? 2);
const exitAtEnd = process.argv.includes('--exit');
const log = (m: string) => console.log(`[sandbox] ${m}`);

const set = await ClusterSet.start({ count, log });
console.log('');
for (const c of set.info.clusters) console.log(`  ${c.name}: ${c.server}`);
console.log(`\nkubeconfig: ${set.info.kubeconfigPath} (contexts ${set.info.clusters.map((c) => c.name).join(', ')})`);
console.log(`cluster description for tests: MCSA_TEST_CLUSTERS=${set.statePath}`);
console.log(`\nexport KUBECONFIG=${set.info.kubeconfigPath}\n`);
if (exitAtEnd) {
  await set.stop();
  log('stopped (--exit)');
} else {
  log('clusters are up; press Ctrl-C to stop them');
  // Keep the process alive until a signal arrives; ClusterSet's handlers stop everything.
  setInterval(() => {}, 1 << 30);
}
