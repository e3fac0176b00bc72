// `npm run sandbox`: starts two real local clusters, each with a real node, and plays the
// getting-started scenario on them with the project's images as pods, then keeps everything up
// until Ctrl-C (`--exit` stops at the end instead). `--no-nodes`: control planes only, the
// controller and webhook as local processes.
import { rmSync } from 'node:fs';
import { ClusterSet } from './clusters.js';
import { playGettingStarted } from './demo.js';
import { playGettingStartedOnNodes } from './demo-nodes.js';

const exitAtEnd = process.argv.includes('--exit');
const nodes = !process.argv.includes('--no-nodes');
const t0 = Date.now();
let n = 0;
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
function say(step: string, detail?: string): void {
  if (step) console.log(`\n[${++n}] ${step}  (${elapsed()})`);
  if (detail) console.log(detail.replace(/^/gm, '    '));
}

say(nodes
  ? 'start 2 clusters (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and a node with containerd and a kubelet, each)'
  : 'start 2 clusters (etcd, kube-apiserver, kube-controller-manager each)');
const set = await ClusterSet.start({ count: 2, nodes, log: (m) => say('', m) });
process.env.MCSA_TEST_CLUSTERS = set.statePath;
for (const c of set.info.clusters) say('', `${c.name}: ${c.server}`);

try {
  if (nodes) {
    await playGettingStartedOnNodes(say, set.info.dir);
  } else {
    const demo = await playGettingStarted(say, set.info.dir);
    // Ctrl-C (or --exit) stops the local processes first, then the clusters.
    set.addCleanup(async () => {
      await demo.install.stop();
      rmSync(demo.work, { recursive: true, force: true });
    });
  }
} catch (e) {
  console.error(`\nsandbox failed: ${(e as Error).message}`);
  await set.stop();
  process.exit(1);
}

console.log(`\nDone in ${elapsed()}.${exitAtEnd ? '' : ` The clusters${nodes ? ' and their nodes' : ', the controller and the webhook'} stay up:`}`);
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
