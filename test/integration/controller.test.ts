// The import controller against real clusters: cluster1 is the target, cluster2 the source,
// registered with `kubemcsa bootstrap`; the controller runs as its Deployment and ServiceAccount would.
import { packageVersion } from '../../src/version.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_LABEL, IMPORT_NAME_ANNOTATION, IMPORT_PLURAL, INSTALL_NAMESPACE, MOUNT_ROOT, ROTATE_ANNOTATION } from '../../src/constants.js';
import { importLabelValue, secretNameForImport } from '../../src/naming.js';
import { namedServiceAccountImportConfigAndNamespace } from '../../src/config/index.js';
import { adminKubeConfig, createTestNamespace, kubectl, testClusters, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { removeSecretVolume, writeSecretVolume } from '../harness/kubelet-volume.js';
import { kubemcsa } from './cli-support.js';
import { apis, bootstrappedPair, createImport, createPodLister, getImport, readSecret, startController, tokenOf, waitForReady, type RunningController } from './controller-support.js';

const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/;
const tokensSeen = new Set<string>();
const remember = (t: string | undefined) => t && tokensSeen.add(t);

let controller: RunningController;
let local: Awaited<ReturnType<typeof createTestNamespace>>;
let remote: Awaited<ReturnType<typeof createTestNamespace>>;
let teardown: (() => Promise<void>) | undefined;
const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-controller-test-'));

async function createRemoteServiceAccount(name: string) {
  await createPodLister(adminKubeConfig('cluster2'), remote.name, name);
}

function importOf(name: string, remoteName: string, extra: Record<string, unknown> = {}, clusterName = 'cluster2') {
  return { metadata: { name, namespace: local.name }, spec: { clusterName, namespace: remote.name, name: remoteName, ...extra } };
}

async function secretOf(importName: string) {
  const s = await readSecret('cluster1', local.name, secretNameForImport(importName));
  remember(tokenOf(s));
  return s;
}

async function waitForNewToken(importName: string, old: string | undefined, timeoutMs = 30_000): Promise<string> {
  let token: string | undefined;
  await waitFor(`a new token in the Secret of ${importName}`, async () => {
    token = tokenOf(await secretOf(importName));
    return token !== undefined && token !== old;
  }, timeoutMs, 100);
  return token!;
}

async function patchImport(name: string, patch: object) {
  await apis('cluster1').custom.patchNamespacedCustomObject(
    { group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name, body: patch },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  ({ local, remote, teardown } = await bootstrappedPair('ctrl'));
  controller = await startController();
}, 120_000);

afterAll(async () => {
  await controller?.stop();
  await teardown?.();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('import controller', () => {
  it('refreshes the registration made by kubemcsa bootstrap and marks it Ready', async () => {
    const reg = await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
    expect(reg.status?.secrets).toEqual([{ name: secretNameForImport('cluster2') }]);
  });

  it('refreshes a registration with its own token, and keeps using the cluster with the new one', async () => {
    const regSecret = secretNameForImport('cluster2');
    const before = tokenOf(await readSecret('cluster1', INSTALL_NAMESPACE, regSecret));
    await apis('cluster1').custom.patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name: 'cluster2', body: { metadata: { annotations: { [ROTATE_ANNOTATION]: uniqueName('r') } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    let after: string | undefined;
    await waitFor('a new registration token', async () => {
      after = tokenOf(await readSecret('cluster1', INSTALL_NAMESPACE, regSecret));
      return after !== undefined && after !== before;
    }, 15_000, 100);
    remember(before);
    remember(after);
    // Minted as the importer itself (the registration's own identity), for the importer itself.
    const claims = JSON.parse(Buffer.from(after!.split('.')[1]!, 'base64url').toString());
    expect(claims.sub).toBe(`system:serviceaccount:${INSTALL_NAMESPACE}:cluster1`);
    await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
  });

  it('imports a remote ServiceAccount: the mounted config lists pods in the source and nothing else', async () => {
    await createRemoteServiceAccount('pod-lister');
    const name = uniqueName('pod-lister');
    await createImport('cluster1', importOf(name, 'pod-lister'));
    const sai = await waitForReady('cluster1', local.name, name, 'True', 'TokenIssued');
    expect(sai.status?.secrets).toEqual([{ name: secretNameForImport(name) }]);
    expect(Date.parse(sai.status!.expirationTimestamp!)).toBeGreaterThan(Date.now() + 50 * 60_000);
    const secret = await secretOf(name);
    expect(Object.keys(secret!.data!).sort()).toEqual(['ca.crt', 'config', 'namespace', 'server', 'token']);
    // Materialise the Secret where the kubelet would mount it, and let kubectl use its config.
    const dir = path.join(MOUNT_ROOT, name);
    mkdirSync(MOUNT_ROOT, { recursive: true });
    const data = Object.fromEntries(Object.entries(secret!.data!).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    await writeSecretVolume(dir, data);
    try {
      const cfg = path.join(dir, 'config');
      const pods = await kubectl(cfg, ['get', 'pods', '-o', 'name']);
      expect(pods).toEqual({ code: 0, stdout: '', stderr: '' });
      const ns = await kubectl(cfg, ['config', 'view', '--minify', '-o', 'jsonpath={.contexts[0].context.namespace}']);
      expect(ns.stdout).toBe(remote.name);
      const secrets = await kubectl(cfg, ['get', 'secrets']);
      expect(secrets.stderr).toMatch(/cannot list resource "secrets"/);
      const otherNs = await kubectl(cfg, ['get', 'pods', '-n', 'default']);
      expect(otherNs.stderr).toMatch(/cannot list resource "pods" .* in the namespace "default"/);
      // The config library reads the same mount.
      const { kubeConfig, namespace } = await namedServiceAccountImportConfigAndNamespace(name, { mountRoot: MOUNT_ROOT });
      expect(namespace).toBe(remote.name);
      const list = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
      expect(list.items).toEqual([]);
    } finally {
      await removeSecretVolume(dir);
    }
  });

  it('reports ClusterNotFound, then becomes Ready when the cluster is registered at runtime', async () => {
    await createRemoteServiceAccount('late-cluster');
    const name = uniqueName('late');
    await createImport('cluster1', importOf(name, 'late-cluster', {}, 'cluster2b'));
    const blocked = await waitForReady('cluster1', local.name, name, 'False', 'ClusterNotFound');
    expect(blocked.status?.conditions?.[0]?.message).toMatch(/cluster "cluster2b" is not registered/);
    const boot = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-name', 'cluster2b', '--target-name', 'cluster1b']);
    try {
      expect(boot.code).toBe(0);
      // The source has granted nothing to this new target yet: the import waits for its consent.
      await waitForReady('cluster1', local.name, name, 'False', 'Forbidden');
      const grant = await kubemcsa(['grant', 'late-cluster', '-n', remote.name, '--target-name', 'cluster1b', '--source-context', 'cluster2']);
      expect(grant.code).toBe(0);
      await waitForReady('cluster1', local.name, name, 'True', 'TokenIssued');
    } finally {
      await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-name', 'cluster2b', '--target-name', 'cluster1b']);
    }
    // Three kubemcsa processes (each compiling its TypeScript at start) and four waits: the
    // default 60 s was too little on a loaded 2-core machine (seen in a cold CI run).
  }, 240_000);

  it('makes a 253-character import Ready with its Secret, through a registration whose source name is longer than 63 characters', async () => {
    await createRemoteServiceAccount('long-names');
    // Both names are valid object names (DNS-1123 subdomains) and too long for a label value.
    const sourceName = `cluster2-${'long-source-name.'.repeat(5)}end`;
    const name = `${uniqueName('long')}.${'x'.repeat(120)}.${'y'.repeat(130)}`.slice(0, 252) + 'z';
    expect(sourceName.length).toBeGreaterThan(63);
    expect(name).toHaveLength(253);
    const pair = ['--target-context', 'cluster1', '--source-context', 'cluster2', '--source-name', sourceName, '--target-name', 'cluster1-long'];
    const boot = await kubemcsa(['bootstrap', ...pair]);
    try {
      expect(boot.code).toBe(0);
      const registration = await waitForReady('cluster1', INSTALL_NAMESPACE, sourceName, 'True', 'TokenIssued');
      expect(registration.status?.secrets).toEqual([{ name: secretNameForImport(sourceName) }]);
      const grant = await kubemcsa(['grant', 'long-names', '-n', remote.name, '--target-name', 'cluster1-long', '--source-context', 'cluster2']);
      expect(grant.code).toBe(0);
      await createImport('cluster1', importOf(name, 'long-names', {}, sourceName));
      const sai = await waitForReady('cluster1', local.name, name, 'True', 'TokenIssued');
      expect(sai.status?.secrets).toEqual([{ name: secretNameForImport(name) }]);
      const secret = await secretOf(name);
      expect(secret?.metadata?.labels?.[IMPORT_LABEL]).toBe(importLabelValue(name));
      expect(secret?.metadata?.annotations?.[IMPORT_NAME_ANNOTATION]).toBe(name);
      expect(tokenOf(secret)).toMatch(JWT);
    } finally {
      const un = await kubemcsa(['unbootstrap', ...pair, '--wait']);
      expect(un.code).toBe(0);
      expect(un.stderr).not.toMatch(/Secret \S+: kept/);
    }
    expect(await readSecret('cluster1', INSTALL_NAMESPACE, secretNameForImport(sourceName))).toBeUndefined();
  });

  it('reports ServiceAccountNotFound, then becomes Ready when the ServiceAccount is created', async () => {
    const name = uniqueName('missing');
    await createImport('cluster1', importOf(name, 'not-yet'));
    const blocked = await waitForReady('cluster1', local.name, name, 'False', 'ServiceAccountNotFound');
    expect(blocked.status?.conditions?.[0]?.message).toContain(`ServiceAccount ${remote.name}/not-yet not found in cluster "cluster2"`);
    expect(await secretOf(name)).toBeUndefined();
    await createRemoteServiceAccount('not-yet');
    await waitForReady('cluster1', local.name, name, 'True', 'TokenIssued', 10_000);
  });

  it('mints a new token when the spec changes, the remote ServiceAccount is recreated or a rotation is asked for, keeping what other tools added', async () => {
    await createRemoteServiceAccount('changing');
    const name = uniqueName('changing');
    await createImport('cluster1', importOf(name, 'changing'));
    await waitForReady('cluster1', local.name, name, 'True');
    const first = tokenOf(await secretOf(name));
    // Another tool labels and annotates the Secret (a reloader, a backup tool): every refresh keeps that.
    const foreign = { labels: { 'backup.example.com/include': 'true' }, annotations: { 'reloader.example.com/match': 'true' } };
    await apis('cluster1').core.patchNamespacedSecret(
      { namespace: local.name, name: secretNameForImport(name), body: { metadata: foreign } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    await patchImport(name, { spec: { expirationSeconds: 7200 } });
    const second = await waitForNewToken(name, first);
    const claims = JSON.parse(Buffer.from(second.split('.')[1]!, 'base64url').toString());
    expect(claims.exp - claims.iat).toBe(7200);
    await waitForReady('cluster1', local.name, name, 'True');

    const { core } = apis('cluster2');
    const oldUid = claims['kubernetes.io'].serviceaccount.uid;
    await core.deleteNamespacedServiceAccount({ namespace: remote.name, name: 'changing' });
    await core.createNamespacedServiceAccount({ namespace: remote.name, body: { metadata: { name: 'changing' } } });
    const third = await waitForNewToken(name, second);
    expect(JSON.parse(Buffer.from(third.split('.')[1]!, 'base64url').toString())['kubernetes.io'].serviceaccount.uid).not.toBe(oldUid);

    await patchImport(name, { metadata: { annotations: { [ROTATE_ANNOTATION]: 'now' } } });
    await waitForNewToken(name, third);
    const refreshed = await secretOf(name);
    expect(refreshed?.metadata?.labels).toMatchObject(foreign.labels);
    expect(refreshed?.metadata?.annotations).toMatchObject(foreign.annotations);
    expect(refreshed?.metadata?.managedFields?.some((f) => f.manager === 'multicluster-service-account-controller' && f.operation === 'Apply')).toBe(true);
  });

  it('repairs a Secret deleted or edited by hand, and the garbage collector deletes it with its import', async () => {
    await createRemoteServiceAccount('repaired');
    const name = uniqueName('repaired');
    await createImport('cluster1', importOf(name, 'repaired'));
    await waitForReady('cluster1', local.name, name, 'True');
    const secretName = secretNameForImport(name);
    const { core, custom } = apis('cluster1');
    const t1 = tokenOf(await secretOf(name));

    await core.deleteNamespacedSecret({ namespace: local.name, name: secretName });
    const t2 = await waitForNewToken(name, t1, 10_000);

    await core.patchNamespacedSecret(
      { namespace: local.name, name: secretName, body: { data: { server: Buffer.from('https://evil.example').toString('base64') } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitForNewToken(name, t2, 10_000);
    const repaired = await secretOf(name);
    expect(Buffer.from(repaired!.data!.server!, 'base64').toString()).toBe(testClusters().clusters[1]!.server);

    await custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name });
    await waitFor(`Secret ${secretName} to be garbage-collected`, async () => (await readSecret('cluster1', local.name, secretName)) === undefined, 60_000, 250);
  });

  it("deletes a deleted import's Secret itself (an uninstall may remove the CRD before the garbage collector acts), but keeps it for kubectl delete --cascade=orphan", async () => {
    await createRemoteServiceAccount('orphans');
    const { custom } = apis('cluster1');
    const gone = uniqueName('orphans');
    const kept = uniqueName('orphans-kept');
    for (const name of [gone, kept]) {
      await createImport('cluster1', importOf(name, 'orphans'));
      await waitForReady('cluster1', local.name, name, 'True');
    }
    await custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name: gone });
    await waitFor(`Secret of ${gone} to be deleted`, async () => (await readSecret('cluster1', local.name, secretNameForImport(gone))) === undefined, 30_000, 250);
    const deletedLines = (key: string) => controller.log().split('\n').filter((l) => l.includes('deleted the object of a deleted import') && l.includes(`"${key}"`));
    await waitFor('the controller to say it deleted it', async () => deletedLines(`${local.name}/${gone}`).length > 0, 10_000, 250);

    const r = await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', '-n', local.name, 'delete', `${IMPORT_PLURAL}.${API_GROUP}/${kept}`, '--cascade=orphan']);
    expect(r.code).toBe(0);
    await waitFor(`import ${kept} to be gone`, async () => (await getImport('cluster1', local.name, kept)) === undefined, 30_000, 250);
    // The garbage collector removed the owner reference before the import went: the Secret is no longer the controller's to delete.
    const orphaned = await readSecret('cluster1', local.name, secretNameForImport(kept));
    expect(orphaned?.metadata?.ownerReferences ?? []).toEqual([]);
    expect(deletedLines(`${local.name}/${kept}`)).toEqual([]);
    await apis('cluster1').core.deleteNamespacedSecret({ namespace: local.name, name: secretNameForImport(kept) });
  });

  it('stops with SecretRejected when the target refuses the Secret as invalid, minting no token in a loop', async () => {
    await createRemoteServiceAccount('rejected');
    const name = uniqueName('rejected');
    const policy = uniqueName('mcsa-test-reject');
    // The target refuses this import's Secret as invalid (HTTP 422), as an admission policy of the cluster's own might.
    const refuse = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicy',
          metadata: { name: policy },
          spec: {
            failurePolicy: 'Fail',
            matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['secrets'] }] },
            matchConditions: [{ name: 'this-import', expression: `object.metadata.name.startsWith('${name}')` }],
            validations: [{ expression: 'false', reason: 'Invalid', message: 'this cluster refuses the Secret' }],
          },
        },
        { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: policy }, spec: { policyName: policy, validationActions: ['Deny'] } },
      ],
    };
    const kubeconfig = testClusters().kubeconfigPath;
    expect((await kubectl(kubeconfig, ['--context', 'cluster1', 'apply', '-f', '-'], JSON.stringify(refuse))).code).toBe(0);
    try {
      const { core } = apis('cluster1');
      await waitFor(`policy ${policy} to be in effect`, async () => {
        const probe = `${name}-probe`;
        const created = await core.createNamespacedSecret({ namespace: local.name, body: { metadata: { name: probe } } }).then(() => true, () => false);
        if (created) await core.deleteNamespacedSecret({ namespace: local.name, name: probe });
        return !created;
      }, 30_000, 200);
      const minted = async () => (await controller.metrics()).split('\n').filter((l) => l.startsWith('mcsa_token_refreshes_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      const before = await minted();
      await createImport('cluster1', importOf(name, 'rejected'));
      const rejected = await waitForReady('cluster1', local.name, name, 'False', 'SecretRejected');
      expect(rejected.status?.conditions?.[0]?.message).toMatch(/writing Secret .* failed: HTTP 422: .*this cluster refuses the Secret/);
      expect(await secretOf(name)).toBeUndefined();
      // Another import goes through meanwhile: the controller keeps working, and the refused one
      // was minted for once (a retry with backoff would have minted again many times by now).
      await createRemoteServiceAccount('after-rejected');
      const other = uniqueName('after-rejected');
      await createImport('cluster1', importOf(other, 'after-rejected'));
      await waitForReady('cluster1', local.name, other, 'True', 'TokenIssued');
      expect(await minted()).toBe(before + 2);
      expect((await getImport('cluster1', local.name, name))?.status?.conditions?.[0]?.reason).toBe('SecretRejected');
    } finally {
      await kubectl(kubeconfig, ['--context', 'cluster1', 'delete', '--ignore-not-found', '-f', '-'], JSON.stringify(refuse));
    }
  });

  it('records Events on transitions and never logs a token or Secret data', async () => {
    const events = await apis('cluster1').core.listNamespacedEvent({ namespace: local.name });
    const reasons = new Set(events.items.map((e) => e.reason));
    expect([...reasons]).toEqual(expect.arrayContaining(['TokenIssued', 'ServiceAccountNotFound', 'ClusterNotFound']));
    const all = JSON.stringify(events.items) + controller.log();
    expect(tokensSeen.size).toBeGreaterThan(5);
    for (const t of tokensSeen) expect(all.includes(t)).toBe(false);
    expect(all).not.toMatch(JWT);
    expect(all).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
    // Every log line is JSON and names what it is about.
    const lines = controller.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines.filter((x) => x.message === 'token minted and Secret written')) expect(l.key).toMatch(/\//);
  });

  it('exposes controller-runtime style metrics', async () => {
    const text = await controller.metrics();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="serviceaccountimport",result="[a-z_]+"\} \d+/);
    expect(text).toMatch(/workqueue_depth\{name="serviceaccountimport"\} \d+/);
    expect(text).toMatch(/mcsa_token_refreshes_total\{cluster="cluster2",why="no Secret yet"\} \d+/);
    expect(text).toMatch(/mcsa_remote_cluster_up\{cluster="cluster2"\} 1/);
    expect(text).toMatch(/mcsa_token_seconds_to_expiry\{namespace="[^"]+",import="[^"]+"\} \d+/);
    expect(text).toMatch(/leader_election_master_status\{name="multicluster-service-account-controller"\} 1/);
    expect(text).toContain(`mcsa_build_info{component="controller",version="${packageVersion()}"} 1`);
    const started = controller.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'controller started');
    expect(started).toMatchObject({ version: packageVersion(), node: process.version });
  });
});
