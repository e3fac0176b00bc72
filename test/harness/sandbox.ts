// `npm run sandbox`: starts two real local clusters and plays the getting-started scenario on
// them, then keeps everything up until Ctrl-C (`--exit` stops at the end instead).
import { rmSync } from 'node:fs';
import { ClusterSet } from './clusters.js';
import { playGettingStarted } from './demo.js';

const exitAtEnd = process.argv.includes('--exit');
const t0 = Date.now();
let n = 0;
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
function say(step: string, detail?: string): void {
  if (step) console.log(`\n[${++n}] ${step}  (${elapsed()})`);
  if (detail) console.log(detail.replace(/^/gm, '    '));
}

say('start 2 clusters (etcd, kube-apiserver, kube-controller-manager each)');
const set = await ClusterSet.start({ count: 2, log: (m) => say('', m) });
process.env.MCSA_TEST_CLUSTERS = set.statePath;
for (const c of set.info.clusters) say('', `${c.name}: ${c.server}`);

try {
  const demo = await playGettingStarted(say, set.info.dir);
  // Ctrl-C (or --exit) stops the local processes first, then the clusters.
  set.addCleanup(async () => {
    await demo.install.stop();
    rmSync(demo.work, { recursive: true, force: true });
  });
} catch (e) {
  console.error(`\nsandbox failed: ${(e as Error).message}`);
  await set.stop();
  process.exit(1);
}

console.log(`\nDone in ${elapsed()}.${exitAtEnd ? '' : ' The clusters, the controller and the webhook stay up:'}`);
console.log(`  kubeconfig: ${set.info.kubeconfigPath} (contexts ${set.info.clusters.map((c) => c.name).join(', ')})`);
console.log(`  cluster description for tests: MCSA_TEST_CLUSTERS=${set.statePath}`);
console.log(`\nexport KUBECONFIG=${set.info.kubeconfigPath}\n`);
if (exitAtEnd) {
  await set.stop();
  console.log('stopped (--exit)');
} else {
  console.log('Press Ctrl-C to stop everything.');
  setInterval(() => {}, 1 << 30);
}
