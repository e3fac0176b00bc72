// The config library against a real cluster2: a ServiceAccountImport mounted the kubelet's way
// (SPEC §6 kubeconfig with tokenFile, TokenRequest token) lists the remote pods through every
// promise loader, and the two examples do the same as child processes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  allNamedConfigsAndNamespaces,
  allServiceAccountImportConfigsAndNamespaces,
  configAndNamespace,
  configAndNamespaceForKubeconfigAndContext,
  MOUNT_ROOT_ENV,
  namedServiceAccountImportConfigAndNamespace,
  serviceAccountImportConfigAndNamespace,
} from '../../src/config/index.js';
import { testClusters } from '../harness/env.js';
import { mountRemoteImport, mountRoot, remoteNamespace, REMOTE, type RemoteNamespace } from './config-remote.js';

const IMPORT = 'cluster2-pod-reader';
const repoRoot = path.resolve(import.meta.dirname, '../..');

let remote: RemoteNamespace;
let root: { dir: string; remove: () => Promise<void> };
const saved = { ...process.env };

beforeAll(async () => {
  remote = await remoteNamespace('cfg-loaders', ['reader']);
  root = await mountRoot('loaders');
  await mountRemoteImport(root.dir, IMPORT, remote.namespace, await remote.mint('reader'));
  process.env[MOUNT_ROOT_ENV] = root.dir;
  process.env.KUBECONFIG = testClusters().kubeconfigPath;
}, 60_000);

afterAll(async () => {
  process.env = { ...saved };
  await root?.remove();
  await remote?.delete();
});

async function podNames(kc: KubeConfig, namespace: string): Promise<string[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  return list.items.map((p) => p.metadata?.name ?? '').sort();
}

describe('promise loaders on a mounted import of cluster2', () => {
  it('namedServiceAccountImportConfigAndNamespace lists the remote pods as the remote ServiceAccount', async () => {
    const { kubeConfig, namespace } = await namedServiceAccountImportConfigAndNamespace(IMPORT);
    expect(namespace).toBe(remote.namespace);
    expect(await podNames(kubeConfig, namespace)).toEqual(remote.pods);
    // Only what the Role grants: not the pods of another namespace, so it is not an admin identity.
    const denied = await kubeConfig
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: 'default' })
      .then(
        () => 0,
        (e: unknown) => (e instanceof ApiException ? e.code : -1),
      );
    expect(denied).toBe(403);
  });

  it('serviceAccountImportConfigAndNamespace and configAndNamespace pick the single import over the kubeconfig', async () => {
    for (const load of [serviceAccountImportConfigAndNamespace, configAndNamespace]) {
      const { kubeConfig, namespace, source } = await load();
      expect(source).toMatchObject({ kind: 'import', name: IMPORT });
      expect(await podNames(kubeConfig, namespace)).toEqual(remote.pods);
    }
  });

  it('allServiceAccountImportConfigsAndNamespaces and allNamedConfigsAndNamespaces include the import (and the contexts)', async () => {
    const imports = await allServiceAccountImportConfigsAndNamespaces();
    expect([...imports.keys()]).toEqual([IMPORT]);
    const all = await allNamedConfigsAndNamespaces();
    expect([...all.keys()]).toEqual([IMPORT, 'cluster1', 'cluster2']);
    const viaImport = all.get(IMPORT)!;
    expect(await podNames(viaImport.kubeConfig, viaImport.namespace)).toEqual(remote.pods);
    const viaContext = all.get(REMOTE)!;
    expect(viaContext.source).toMatchObject({ kind: 'kubeconfig', context: REMOTE });
    expect(await podNames(viaContext.kubeConfig, remote.namespace)).toEqual(remote.pods);
  });

  it('configAndNamespaceForKubeconfigAndContext loads the mounted config file itself, tokenFile remapped', async () => {
    const { kubeConfig, namespace } = await configAndNamespaceForKubeconfigAndContext(path.join(root.dir, IMPORT, 'config'), IMPORT);
    expect(namespace).toBe(remote.namespace);
    expect(await podNames(kubeConfig, namespace)).toEqual(remote.pods);
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runExample(example: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join('examples', example)],
      { cwd: repoRoot, env: { ...saved, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('the examples as child processes', () => {
  it('multicluster-client prints the remote pods through the import, and every context', async () => {
    const r = await runExample('multicluster-client.ts', { [MOUNT_ROOT_ENV]: root.dir, KUBECONFIG: testClusters().kubeconfigPath });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`${IMPORT}: 2 pods`) });
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith(`${IMPORT}\t`)).sort()).toEqual(remote.pods.map((p) => `${IMPORT}\t${remote.namespace}/${p}`));
    expect(r.stderr).toContain('cluster1: ');
    expect(r.stderr).toContain('cluster2: ');
  }, 60_000);

  it('generic-client prints the remote pods through the single import', async () => {
    const r = await runExample('generic-client.ts', { [MOUNT_ROOT_ENV]: root.dir, KUBECONFIG: testClusters().kubeconfigPath });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(remote.pods.map((p) => `${remote.namespace}/${p}`));
    expect(r.stderr).toContain(`import ${IMPORT}`);
  }, 60_000);

  it('generic-client exits 1 with a clear message when several imports are mounted', async () => {
    const several = await mountRoot('several');
    try {
      const token = await remote.mint('reader');
      await mountRemoteImport(several.dir, 'a', remote.namespace, token);
      await mountRemoteImport(several.dir, 'b', remote.namespace, token);
      const r = await runExample('generic-client.ts', { [MOUNT_ROOT_ENV]: several.dir, KUBECONFIG: testClusters().kubeconfigPath });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('generic-client: 2 service account imports are mounted');
      expect(r.stderr).toContain('pick one by name');
      expect(r.stderr).not.toContain(token);
    } finally {
      await several.remove();
    }
  }, 60_000);
});
