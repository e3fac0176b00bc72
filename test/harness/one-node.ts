// A harness process for cleanup tests: one cluster with a real node (the pause image only) and a
// running pod, then waits to be signalled. Prints one JSON line on stdout when the pod runs:
// { dir, cgroup, holderPid } of the cluster.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ClusterSet } from './clusters.js';
import { waitFor } from './https.js';
import { SANDBOX_IMAGE } from './node.js';

const set = await ClusterSet.start({ count: 1, nodes: true, images: false, log: (m) => process.stderr.write(`${m}\n`) });
const kubectl = (...args: string[]) => execFileSync(set.info.kubectl, [`--kubeconfig=${set.info.kubeconfigPath}`, ...args], { encoding: 'utf8' });
kubectl('run', 'sleeper', `--image=${SANDBOX_IMAGE}`, '--restart=Never');
await waitFor('pod sleeper to run', async () => kubectl('get', 'pod', 'sleeper', '-o', 'jsonpath={.status.phase}') === 'Running', 60_000, 250);
const dir = path.join(set.info.dir, 'cluster1');
console.log(JSON.stringify({ dir: set.info.dir, cgroup: `mcsa-${process.pid}-cluster1`, holderPid: Number(execFileSync('cat', [path.join(dir, 'holder.pid')], { encoding: 'utf8' })) }));
setInterval(() => {}, 1 << 30);
