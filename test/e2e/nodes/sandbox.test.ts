// The README's first command as it runs by default: `npm run sandbox` starts two clusters with a
// real node each, installs the project as pods, and the multicluster-client Job's `kubectl logs`
// lists cluster2's pods; with --exit everything is cleaned up.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';

const ROOT = path.resolve(import.meta.dirname, '../../..');

describe('npm run sandbox (with nodes, the default)', () => {
  it("prints each step with its time and ends with cluster2's pods in the Job's logs", async () => {
    const env = { ...process.env };
    delete env.MCSA_TEST_CLUSTERS;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/harness/sandbox.ts', '--exit'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect({ code, tail: code === 0 ? '' : out.slice(-3000) }).toEqual({ code: 0, tail: '' });
    const steps = [...out.matchAll(/^\[(\d+)\] (.*?)  \(\d+\.\ds\)$/gm)].map((m) => m[2]);
    expect(steps).toEqual([
      'start 2 clusters (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and a node with containerd and a kubelet, each)',
      'install into cluster1: kubectl apply -k an overlay of manifests/install.yaml setting the image localhost/multicluster-service-account:0.1.0',
      expect.stringMatching(/^bootstrap cluster1 ← cluster2 \(kubemcsa bootstrap --source-server https:\/\/198\.18\.0\.2:443\)$/),
      'in cluster2: ServiceAccount pod-lister, a Role that can list pods, its RoleBinding, an nginx Deployment',
      'in cluster2, its admin grants ServiceAccount default/pod-lister to cluster1 (kubemcsa grant)',
      'in cluster1: label namespace default multicluster-service-account=enabled, create import cluster2-default-pod-lister',
      'in cluster1: the multicluster-client Job (localhost/multicluster-client:0.1.0), annotated with the import; kubectl logs job/multicluster-client:',
    ]);
    expect(out).toMatch(/cluster1: node cluster1-node Ready/);
    expect(out).toMatch(/cluster2: node cluster2-node Ready/);
    expect(out.match(/^ {4}pod\/multicluster-service-account-webhook-\S+ +1\/1 +Running/gm)).toHaveLength(2);
    expect(out.match(/^ {4}cluster2-default-pod-lister\tdefault\/nginx-\S+$/gm)).toHaveLength(2);
    expect(out).not.toMatch(/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./);
    expect(out).toMatch(/stopped \(--exit\)/);
    const dir = /^export KUBECONFIG=(.*)\/kubeconfig$/m.exec(out)?.[1];
    expect(dir && existsSync(dir)).toBe(false);
  }, 600_000);
});
