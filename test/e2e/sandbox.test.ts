// The README's first command without nodes: `npm run sandbox -- --no-nodes` plays the
// getting-started scenario on its own real clusters and (with --exit) cleans everything up.
// test/e2e/nodes/sandbox.test.ts runs the default, with nodes.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('npm run sandbox -- --no-nodes', () => {
  it('plays every step and ends with cluster2\'s pods listed from cluster1', async () => {
    const env = { ...process.env };
    delete env.MCSA_TEST_CLUSTERS;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/harness/sandbox.ts', '--exit', '--no-nodes'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect({ code, tail: code === 0 ? '' : out.slice(-3000) }).toEqual({ code: 0, tail: '' });
    const steps = [...out.matchAll(/^\[(\d+)\] (.*?)  \(/gm)].map((m) => m[2]);
    expect(steps).toEqual([
      'start 2 clusters (etcd, kube-apiserver, kube-controller-manager each)',
      'install into cluster1: CRD, namespace, RBAC, webhook configuration; controller and webhook as local processes',
      'bootstrap cluster1 ← cluster2 (kubemcsa bootstrap)',
      'in cluster2: ServiceAccount pod-lister, a Role that can list pods, its RoleBinding, an nginx Deployment',
      'in cluster2, its admin grants ServiceAccount default/pod-lister to cluster1 (kubemcsa grant)',
      'in cluster1: label namespace default multicluster-service-account=enabled, create import cluster2-default-pod-lister',
      'in cluster1: the multicluster-client Job, annotated with the import',
      expect.stringMatching(/^the Secret cluster2-default-pod-lister-token-\w{5}: keys ca\.crt, config, namespace, server, token; its kubeconfig/),
      expect.stringMatching(/^the Job's pod multicluster-client-\w+: volume and mounts added by the webhook$/),
      'run the multicluster-client with the files that pod would see',
      'cluster2 pods, listed from cluster1 as cluster2\'s ServiceAccount default/pod-lister:',
    ]);
    expect(out).toMatch(/import Ready=True \(TokenIssued\)/);
    expect(out).toMatch(/tokenFile: "\/var\/run\/secrets\/admiralty\.io\/serviceaccountimports\/cluster2-default-pod-lister\/token"/);
    expect(out).toMatch(/volume mcsa-cluster2-default-pod-lister-\w{5} → Secret cluster2-default-pod-lister-token-\w{5}/);
    expect(out).toMatch(/client: \/var\/run\/secrets\/admiralty\.io\/serviceaccountimports\/cluster2-default-pod-lister \(readOnly=true\)/);
    const pods = out.match(/^ {4}cluster2-default-pod-lister\tdefault\/nginx-\S+$/gm) ?? [];
    expect(pods).toHaveLength(2);
    expect(out).not.toMatch(/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./);
    expect(out).toMatch(/stopped \(--exit\)/);
    const dir = /^export KUBECONFIG=(.*)\/kubeconfig$/m.exec(out)?.[1];
    expect(dir && existsSync(dir)).toBe(false);
  }, 240_000);
});
