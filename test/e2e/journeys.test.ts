// The README's user journeys on the shared real clusters, with the project installed the way
// install.yaml installs it (controller and webhook as local processes): several imports in one
// pod, rotation visible in status and in kubemcsa status, and unbootstrap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_ANNOTATION, IMPORT_PLURAL, INSTALL_NAMESPACE, ROTATE_ANNOTATION } from '../../src/constants.js';
import { secretNameForImport, volumeNameForImport } from '../../src/naming.js';
import { adminKubeConfig, createTestNamespace, kubectl, testClusters, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { installLocally, NAMESPACE_ENABLED_LABEL, WEBHOOK_CONFIG, type LocalInstall } from '../harness/install.js';
import { writeSecretVolume } from '../harness/kubelet-volume.js';
import { kubemcsa } from '../integration/cli-support.js';
import { createImport, createPolicy, grantToCluster1, readSecret, tokenOf, waitForReady } from '../integration/controller-support.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-journeys-'));
let install: LocalInstall;
let local: Awaited<ReturnType<typeof createTestNamespace>>;
let remote: Awaited<ReturnType<typeof createTestNamespace>>;
let bootstrapped = false;
let dropPolicy: (() => Promise<void>) | undefined;

function runClient(mountRoot: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'examples/multicluster-client.ts'], { cwd: ROOT, env: { ...process.env, MCSA_MOUNT_ROOT: mountRoot, KUBECONFIG: path.join(work, 'none') }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
  });
}

beforeAll(async () => {
  install = await installLocally({ cluster: 'cluster1', dir: path.join(work, 'install') });
  const boot = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--wait', '--timeout', '60s']);
  if (boot.code !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);
  bootstrapped = true;
  local = await createTestNamespace('cluster1', 'journey', { [NAMESPACE_ENABLED_LABEL]: 'enabled' });
  remote = await createTestNamespace('cluster2', 'journey-src');
  const kc2 = adminKubeConfig('cluster2');
  const core2 = kc2.makeApiClient(CoreV1Api);
  const rbac2 = kc2.makeApiClient(RbacAuthorizationV1Api);
  await rbac2.createNamespacedRole({ namespace: remote.name, body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] } });
  for (const sa of ['reader-a', 'reader-b']) {
    await core2.createNamespacedServiceAccount({ namespace: remote.name, body: { metadata: { name: sa } } });
    await rbac2.createNamespacedRoleBinding({ namespace: remote.name, body: {
      metadata: { name: sa }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: remote.name }],
    } });
  }
  await core2.createNamespacedPod({ namespace: remote.name, body: { metadata: { name: 'remote-pod' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
  // Both sides consent: cluster2 grants the two readers to cluster1, cluster1's admin maps the namespaces.
  for (const sa of ['reader-a', 'reader-b']) await grantToCluster1('grant', [sa, '-n', remote.name]);
  dropPolicy = await createPolicy('cluster1', `${local.name}-to-${remote.name}`, { clusters: ['cluster2'], mappings: [{ namespace: local.name, remoteNamespace: remote.name, serviceAccounts: ['reader-a', 'reader-b'] }] });
}, 180_000);

afterAll(async () => {
  await dropPolicy?.();
  await install?.stop();
  await adminKubeConfig('cluster1').makeApiClient(AdmissionregistrationV1Api).deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIG }).catch(() => undefined);
  await adminKubeConfig('cluster1').makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: INSTALL_NAMESPACE, name: 'multicluster-service-account-webhook-tls' }).catch(() => undefined);
  await local?.delete();
  await remote?.delete();
  if (bootstrapped) await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--wait']);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('user journeys', () => {
  const imports = [uniqueName('a'), uniqueName('b')];

  it('mounts several imports into one pod, and the client reaches the source through each', async () => {
    for (const [i, name] of imports.entries()) {
      await createImport('cluster1', { metadata: { name, namespace: local.name }, spec: { clusterName: 'cluster2', namespace: remote.name, name: i === 0 ? 'reader-a' : 'reader-b' } });
    }
    for (const name of imports) await waitForReady('cluster1', local.name, name, 'True');
    const core1 = adminKubeConfig('cluster1').makeApiClient(CoreV1Api);
    const pod = await core1.createNamespacedPod({ namespace: local.name, body: {
      metadata: { name: 'two-imports', annotations: { [IMPORT_ANNOTATION]: ` ${imports[0]}, ${imports[1]} ,${imports[0]}` } },
      spec: { initContainers: [{ name: 'init', image: 'busybox' }], containers: [{ name: 'main', image: 'busybox' }, { name: 'sidecar', image: 'busybox' }] },
    } });
    const volumes = pod.spec!.volumes!.filter((v) => v.secret).map((v) => [v.name, v.secret!.secretName]);
    expect(volumes).toEqual(imports.map((n) => [volumeNameForImport(n), secretNameForImport(n)]));
    for (const c of [...pod.spec!.initContainers!, ...pod.spec!.containers]) {
      expect((c.volumeMounts ?? []).map((m) => [m.mountPath, m.readOnly])).toEqual(imports.map((n) => [`/var/run/secrets/admiralty.io/serviceaccountimports/${n}`, true]));
    }
    const mountRoot = path.join(work, 'mounts');
    for (const n of imports) {
      const s = await readSecret('cluster1', local.name, secretNameForImport(n));
      await writeSecretVolume(path.join(mountRoot, n), Object.fromEntries(Object.entries(s!.data!).map(([k, v]) => [k, Buffer.from(v, 'base64')])));
    }
    const client = await runClient(mountRoot);
    expect(client.stderr).not.toMatch(/failed/);
    expect(client.stdout.trim().split('\n').sort()).toEqual(imports.map((n) => `${n}\t${remote.name}/remote-pod`).sort());
  });

  it('shows a rotation in the import status and in kubemcsa status', async () => {
    const name = imports[0]!;
    const before = tokenOf(await readSecret('cluster1', local.name, secretNameForImport(name)));
    const sai1 = await waitForReady('cluster1', local.name, name, 'True');
    await adminKubeConfig('cluster1').makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name, body: { metadata: { annotations: { [ROTATE_ANNOTATION]: 'journey' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor('a new token', async () => tokenOf(await readSecret('cluster1', local.name, secretNameForImport(name))) !== before, 15_000, 100);
    await waitFor('the status to show the new expiry', async () => {
      const sai = await waitForReady('cluster1', local.name, name, 'True');
      return sai.status!.expirationTimestamp! > sai1.status!.expirationTimestamp! || sai.metadata.resourceVersion !== sai1.metadata.resourceVersion;
    }, 15_000, 200);
    const status = await kubemcsa(['status', '--context', 'cluster1', '-o', 'json']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(name);
    expect(status.stdout).toContain('cluster2');
  });

  it('unbootstrap: the registration goes, its token stops working, imports report ClusterNotFound', async () => {
    const reg = await readSecret('cluster1', INSTALL_NAMESPACE, secretNameForImport('cluster2'));
    const token = tokenOf(reg)!;
    const un = await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2']);
    expect(un.code).toBe(0);
    bootstrapped = false;
    for (const name of imports) await waitForReady('cluster1', local.name, name, 'False', 'ClusterNotFound', 30_000);
    const server = testClusters().clusters[1]!;
    const file = path.join(work, 'registration.kubeconfig');
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
      clusters: [{ name: 'c', cluster: { server: server.server, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }],
      users: [{ name: 'u', user: { token } }], contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }] }), { mode: 0o600 });
    await waitFor('the registration token to be rejected by cluster2', async () => /Unauthorized|must be logged in/.test((await kubectl(file, ['get', 'serviceaccounts'])).stderr), 30_000, 500);
  });
});
