// Two-sided consent on real clusters (issue 11): a tenant of cluster1 that may only create
// ServiceAccountImports and pods in its own namespace obtains exactly the identities of cluster2
// that both sides granted, nothing else; revoking a grant stops the imported token at the source
// within seconds; registrations live long enough to survive a controller outage and say how to
// restore them when they did not.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE, MOUNT_ROOT } from '../../src/constants.js';
import { namedServiceAccountImportConfigAndNamespace } from '../../src/config/index.js';
import { secretNameForImport } from '../../src/naming.js';
import { SecretAnnotations } from '../../src/secret.js';
import { adminKubeConfig, createTestNamespace, uniqueName } from '../harness/env.js';
import { serviceAccountKubeconfig } from '../harness/deployment.js';
import { waitFor } from '../harness/https.js';
import { removeSecretVolume, writeSecretVolume } from '../harness/kubelet-volume.js';
import { kubemcsa } from './cli-support.js';
import { createPodLister, createPolicy, grantToCluster1, installControllerPrerequisites, readSecret, startController, tokenOf, waitForReady, type RunningController } from './controller-support.js';

const PAIR = ['--target-context', 'cluster1', '--source-context', 'cluster2'];
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/;

let controller: RunningController | undefined;
let ns: string;
let otherRemote: string;
const cleanups: Array<() => Promise<void>> = [];
const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-consent-'));
let tenant: CustomObjectsApi;
/** A cluster-admin ServiceAccount of cluster2's kube-system. */
let adminSa: string;

const statusOf = (e: unknown) => (e instanceof ApiException ? e.code : undefined);

/** The sum of a counter's samples for cluster2 (all other labels). */
async function counterForCluster2(name: string): Promise<number> {
  const text = await controller!.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes('cluster="cluster2"'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

function tenantImport(name: string, spec: Record<string, unknown>) {
  return tenant.createNamespacedCustomObject({
    group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL,
    body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', metadata: { name }, spec: { clusterName: 'cluster2', ...spec } },
  });
}

beforeAll(async () => {
  await installControllerPrerequisites('cluster1');
  const boot = await kubemcsa(['bootstrap', ...PAIR]);
  cleanups.push(async () => void (await kubemcsa(['unbootstrap', ...PAIR, '--wait'])));
  if (boot.code !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);

  // The same namespace name on both sides (namespace sameness), and another source namespace.
  const local = await createTestNamespace('cluster1', 'consent');
  ns = local.name;
  cleanups.push(local.delete);
  const c2 = adminKubeConfig('cluster2');
  const core2 = c2.makeApiClient(CoreV1Api);
  await core2.createNamespace({ body: { metadata: { name: ns } } });
  cleanups.push(async () => void (await core2.deleteNamespace({ name: ns }).catch(() => undefined)));
  const other = await createTestNamespace('cluster2', 'consent-other');
  otherRemote = other.name;
  cleanups.push(other.delete);

  // In cluster2: a pod lister (granted), one that is not granted, one in another namespace
  // (granted), and a cluster-admin ServiceAccount in kube-system.
  await createPodLister(c2, ns, 'granted');
  await createPodLister(c2, ns, 'not-granted');
  await createPodLister(c2, otherRemote, 'reader');
  const admin = (adminSa = uniqueName('consent-admin'));
  await core2.createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name: admin } } });
  const rbac2 = c2.makeApiClient(RbacAuthorizationV1Api);
  await rbac2.createClusterRoleBinding({ body: {
    metadata: { name: admin }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: admin, namespace: 'kube-system' }],
  } });
  cleanups.push(async () => {
    await rbac2.deleteClusterRoleBinding({ name: admin }).catch(() => undefined);
    await core2.deleteNamespacedServiceAccount({ namespace: 'kube-system', name: admin }).catch(() => undefined);
  });

  // The tenant: may create and read imports and create pods in its namespace, nothing else.
  const c1 = adminKubeConfig('cluster1');
  await c1.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'tenant' } } });
  const rbac1 = c1.makeApiClient(RbacAuthorizationV1Api);
  await rbac1.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'tenant' }, rules: [
    { apiGroups: [API_GROUP], resources: [IMPORT_PLURAL], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list'] },
  ] } });
  await rbac1.createNamespacedRoleBinding({ namespace: ns, body: {
    metadata: { name: 'tenant' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' },
    subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: ns }],
  } });
  const kc = new KubeConfig();
  kc.loadFromFile(await serviceAccountKubeconfig('cluster1', ns, 'tenant', path.join(work, 'tenant.kubeconfig')));
  tenant = kc.makeApiClient(CustomObjectsApi);

  await grantToCluster1('grant', ['granted', '-n', ns]);
  await grantToCluster1('grant', ['reader', '-n', otherRemote]);
  controller = await startController();
}, 180_000);

afterAll(async () => {
  await controller?.stop();
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('two-sided consent', () => {
  it('gives a registration made with the defaults a token valid for at least 24 h', async () => {
    const reg = await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
    expect(Date.parse(reg.status!.expirationTimestamp!)).toBeGreaterThanOrEqual(Date.now() + 24 * 3600_000 - 5 * 60_000);
  });

  it('refuses every identity that one side did not grant, without asking the source for a token', async () => {
    await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
    const requestsBefore = await counterForCluster2('mcsa_token_requests_total');
    // A lifetime of ten years does not even get past the schema.
    const forever = await tenantImport(uniqueName('forever'), { namespace: ns, name: 'granted', expirationSeconds: 315_360_000 }).then(() => 201, (e: unknown) => statusOf(e));
    expect(forever).toBe(422);

    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['kube-system', { namespace: 'kube-system', name: adminSa }, /remote namespace kube-system is never importable/],
      ['not-granted', { namespace: ns, name: 'not-granted' }, /not granted to this cluster .*kubemcsa grant not-granted -n /],
      ['other-namespace', { namespace: otherRemote, name: 'reader' }, /only name remote namespace .* \(namespace sameness\)/],
      ['importer', { namespace: INSTALL_NAMESPACE, name: 'cluster1' }, /multicluster-service-account is never importable/],
      ['audience', { namespace: ns, name: 'granted', audiences: ['sts.amazonaws.com'] }, /audience "sts.amazonaws.com" is not allowed/],
      ['lifetime', { namespace: ns, name: 'granted', expirationSeconds: 90_000 }, /expirationSeconds 90000 is over 86400/],
    ];
    for (const [name, spec] of cases) await tenantImport(name, spec);
    for (const [name, , message] of cases) {
      const sai = await waitForReady('cluster1', ns, name, 'False', 'Forbidden');
      const c = sai.status!.conditions!.find((x) => x.type === 'Ready')!;
      expect(c.message).toMatch(message);
      expect(await readSecret('cluster1', ns, secretNameForImport(name))).toBeUndefined();
    }
    // Not one TokenRequest went to the source for any of them.
    expect(await counterForCluster2('mcsa_token_requests_total')).toBe(requestsBefore);
    // A policy of the cluster admin can map the other namespace; it stays refused by the source
    // until granted there, and lower lifetimes per source are enforced.
    const drop = await createPolicy('cluster1', uniqueName('consent-map'), { clusters: ['cluster2'], maxExpirationSeconds: 1200, mappings: [{ namespace: ns, remoteNamespace: otherRemote, serviceAccounts: ['reader'] }] });
    try {
      await waitForReady('cluster1', ns, 'other-namespace', 'True', 'TokenIssued');
      const capped = await waitForReady('cluster1', ns, 'lifetime', 'False', 'Forbidden');
      expect(capped.status!.conditions![0]!.message).toMatch(/expirationSeconds 90000 is over 1200 \(maxExpirationSeconds of ServiceAccountImportPolicy /);
    } finally {
      await drop();
    }
    // Without the policy, the mapped import is refused again.
    await waitForReady('cluster1', ns, 'other-namespace', 'False', 'Forbidden');
    for (const [name] of cases) await tenant.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, name });
  }, 120_000);

  it('grant → Ready; revoke → the imported token gets 401 from the source within 15 s and the import turns Forbidden', async () => {
    const name = uniqueName('granted');
    await tenantImport(name, { namespace: ns, name: 'granted' });
    await waitForReady('cluster1', ns, name, 'True', 'TokenIssued');
    const secret = await readSecret('cluster1', ns, secretNameForImport(name));
    expect(secret?.metadata?.annotations?.[SecretAnnotations.expiration]).toBeDefined();
    const dir = path.join(MOUNT_ROOT, name);
    mkdirSync(MOUNT_ROOT, { recursive: true });
    await writeSecretVolume(dir, Object.fromEntries(Object.entries(secret!.data!).map(([k, v]) => [k, Buffer.from(v, 'base64')])));
    try {
      const { kubeConfig, namespace } = await namedServiceAccountImportConfigAndNamespace(name, { mountRoot: MOUNT_ROOT });
      const pods = kubeConfig.makeApiClient(CoreV1Api);
      expect((await pods.listNamespacedPod({ namespace })).items).toEqual([]);

      const log = await grantToCluster1('revoke', ['granted', '-n', ns]);
      expect(log).not.toMatch(JWT);
      const revoked = Date.now();
      let status: number | undefined;
      await waitFor('the source to refuse the imported token (401)', async () => {
        status = await pods.listNamespacedPod({ namespace }).then(() => 200, (e: unknown) => statusOf(e));
        return status === 401;
      }, 15_000, 250);
      const refusedAfterMs = Date.now() - revoked;
      const sai = await waitForReady('cluster1', ns, name, 'False', 'Forbidden', 15_000);
      expect(sai.status!.conditions![0]!.message).toMatch(/not granted to this cluster/);
      console.log(`revocation: 401 at the source ${refusedAfterMs} ms after kubemcsa revoke returned; import Forbidden ${Date.now() - revoked} ms after`);

      // Granting again brings the import back with a fresh token bound to the new grant.
      await grantToCluster1('grant', ['granted', '-n', ns]);
      await waitForReady('cluster1', ns, name, 'True', 'TokenIssued', 15_000);
      const renewed = tokenOf(await readSecret('cluster1', ns, secretNameForImport(name)));
      expect(renewed).toBeDefined();
      expect(renewed).not.toBe(tokenOf(secret));
    } finally {
      await removeSecretVolume(dir);
    }
    expect(controller!.log()).not.toMatch(JWT);
  }, 90_000);

  it('says when a registration token expired while the controller was down, with the command that restores it', async () => {
    await controller!.stop();
    controller = undefined;
    // While the controller is down, its registration's token lapses: the source no longer takes it
    // (the importer is recreated, as after an expiry) and the Secret says it expired an hour ago.
    const core2 = adminKubeConfig('cluster2').makeApiClient(CoreV1Api);
    const importer = await core2.readNamespacedServiceAccount({ namespace: INSTALL_NAMESPACE, name: 'cluster1' });
    await core2.deleteNamespacedServiceAccount({ namespace: INSTALL_NAMESPACE, name: 'cluster1' });
    await core2.createNamespacedServiceAccount({ namespace: INSTALL_NAMESPACE, body: { metadata: { name: 'cluster1', labels: importer.metadata!.labels!, annotations: importer.metadata!.annotations! } } });
    const core1 = adminKubeConfig('cluster1').makeApiClient(CoreV1Api);
    const expiredAt = new Date(Date.now() - 3600_000).toISOString();
    await core1.patchNamespacedSecret(
      { namespace: INSTALL_NAMESPACE, name: secretNameForImport('cluster2'), body: { metadata: { annotations: { [SecretAnnotations.expiration]: expiredAt } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    controller = await startController();
    const reg = await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'False', 'TokenExpired');
    const message = reg.status!.conditions!.find((c) => c.type === 'Ready')!.message!;
    const command = 'kubemcsa bootstrap --target-context <context of this cluster> --target-name cluster1 --source-context <context of cluster2> --source-name cluster2';
    expect(message).toContain(command);
    const status = await kubemcsa(['status', '--context', 'cluster1']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('TokenExpired');
    expect(status.stdout).toContain(command);
    // The command, with the real contexts, restores it.
    const again = await kubemcsa(['bootstrap', ...PAIR]);
    expect(again.code).toBe(0);
    await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued', 30_000);
  }, 120_000);
});
