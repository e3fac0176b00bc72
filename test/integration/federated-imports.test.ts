// Federated imports (ADR 0022) on a real API server, with the controller and the webhook run as
// their Deployments run them (their own ServiceAccounts and manifest RBAC, the confining admission
// policy in force): a federated source record written by hand (as `kubemcsa federate` writes it)
// makes a federated import Ready with a ConfigMap and no Secret; a pod gets the projected volume;
// the CRD's CEL rules refuse the mixes; a deleted record, a deleted import and a switch back to
// Token each have their effect; the controller's ServiceAccount cannot write an unlabelled ConfigMap.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, CoreV1Api, type V1ConfigMap, type V1Pod } from '@kubernetes/client-node';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, FEDERATED_SOURCE_LABEL, IMPORT_ANNOTATION, IMPORT_KIND, IMPORT_LABEL, IMPORT_PLURAL, INSTALL_NAMESPACE, MOUNT_ROOT } from '../../src/constants.js';
import { buildFederatedConfigMap } from '../../src/federation/imports.js';
import { configMapNameForImport, secretNameForImport, volumeNameForImport } from '../../src/naming.js';
import { serviceAccountKubeconfig } from '../harness/deployment.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../harness/install.js';
import { apis, CONTROLLER_SA, createImport, getImport, installControllerPrerequisites, readSecret, startController, waitForReady, type RunningController } from './controller-support.js';
import { createWebhookConfiguration, selfManagedSetup, startWebhook, TEST_SCOPE_LABEL, type RunningWebhook } from './webhook-process.js';
import { KubeConfig } from '@kubernetes/client-node';

const CLUSTER = 'cluster1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONTROLLER_POLICY_FILE = 'manifests/policies/controller-secrets.yaml';
const SOURCE = uniqueName('fedsrc');
const AUDIENCE = `multicluster.admiralty.io/${SOURCE}`;
const SERVER = 'https://source.federated.example:6443';
const RECORD = uniqueName('federate');

const core = () => adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api);
const kubeconfigPath = () => clusterInfo(CLUSTER).kubeconfigPath;

/** The federated source record, as `kubemcsa federate` writes it. */
async function writeRecord(data: Record<string, string>): Promise<void> {
  const body: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: RECORD, namespace: INSTALL_NAMESPACE, labels: { [FEDERATED_SOURCE_LABEL]: SOURCE } }, data };
  const r = await kubectl(kubeconfigPath(), ['--context', CLUSTER, 'apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(body));
  if (r.code !== 0) throw new Error(`cannot write the record: ${r.stderr}`);
}

async function readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
  try {
    return await core().readNamespacedConfigMap({ namespace, name });
  } catch (e) {
    if (e instanceof ApiException && e.code === 404) return undefined;
    throw e;
  }
}

function podManifest(name: string, namespace: string, annotation: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, annotations: { [IMPORT_ANNOTATION]: annotation } },
    // Set as the ServiceAccount admission plugin sets it before webhooks run (the node-less test
    // clusters disable that plugin); a projected serviceAccountToken needs it.
    spec: { serviceAccountName: 'default', initContainers: [{ name: 'init', image: 'busybox' }], containers: [{ name: 'app', image: 'busybox' }] },
  };
}

/** `kubectl create --dry-run=server` of a pod: the mutated pod, or the refusal's stderr. */
async function dryRunPod(namespace: string, annotation: string): Promise<{ pod?: V1Pod; stderr: string }> {
  const r = await kubectl(kubeconfigPath(), ['--context', CLUSTER, 'create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(podManifest(uniqueName('p'), namespace, annotation)));
  return r.code === 0 ? { pod: JSON.parse(r.stdout) as V1Pod, stderr: r.stderr } : { stderr: r.stderr };
}

async function refusal(write: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await write();
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
    return { code: e.code, message: body?.message ?? '' };
  }
  throw new Error('the write was allowed');
}

const importsApi = (namespace: string) => ({ group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL });

describe('federated imports on a real API server', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let controller: RunningController | undefined;
  let webhook: RunningWebhook | undefined;
  let ns: string;
  let tmp: string;

  beforeAll(async () => {
    await installControllerPrerequisites(CLUSTER);
    const applied = await kubectl(kubeconfigPath(), ['--context', CLUSTER, 'apply', '--server-side', '--force-conflicts', '-f', path.join(ROOT, CONTROLLER_POLICY_FILE)]);
    if (applied.code !== 0) throw new Error(`cannot apply the controller's admission policy: ${applied.stderr}`);
    cleanups.push(async () => {
      await kubectl(kubeconfigPath(), ['--context', CLUSTER, 'delete', '--ignore-not-found', '-f', path.join(ROOT, CONTROLLER_POLICY_FILE)]);
    });
    cleanups.push(async () => {
      await core().deleteNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD }).catch(() => undefined);
    });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mcsa-federated-'));
    cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));

    const { scope, install, mwcName, identity } = await selfManagedSetup(CLUSTER, 'fed-wh', cleanups);
    webhook = await startWebhook({ cluster: CLUSTER, installNamespace: install, webhookConfigName: mwcName, kubeconfigPath: identity.kubeconfigPath });
    cleanups.push(() => webhook!.stop());
    const mwc = await createWebhookConfiguration(adminKubeConfig(CLUSTER), mwcName, webhook.port, scope);
    cleanups.push(mwc.delete);
    const on = await createTestNamespace(CLUSTER, 'fed', { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: scope });
    cleanups.push(on.delete);
    ns = on.name;

    controller = await startController({ name: 'federated-controller' });
    cleanups.push(() => controller!.stop());
    await writeRecord({ server: SERVER, 'ca.crt': clusterInfo('cluster2').caPem, audience: AUDIENCE });
    // The API server calls the webhook once it has published its caBundle.
    await waitFor('the API server to call the webhook', async () => (await dryRunPod(ns, 'no-such-import')).stderr.includes('service account import "no-such-import" not found'), 60_000, 250);
  }, 180_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 90_000);

  it('makes a federated import Ready with a ConfigMap of exactly the record\'s server and CA, and no Secret', async () => {
    await createImport(CLUSTER, { metadata: { name: 'fed', namespace: ns }, spec: { mode: 'Federated', clusterName: SOURCE } });
    const sai = await waitForReady(CLUSTER, ns, 'fed', 'True', 'Federated');
    expect(sai.status).toMatchObject({ audience: AUDIENCE, expirationSeconds: 3600 });
    expect(sai.status?.secrets).toBeUndefined();
    const cm = await readConfigMap(ns, configMapNameForImport('fed'));
    const wanted = buildFederatedConfigMap({ importName: 'fed', importNamespace: ns, importUid: sai.metadata.uid!, source: { server: SERVER, caPem: clusterInfo('cluster2').caPem, audience: AUDIENCE } });
    expect(cm?.data).toEqual(wanted.data);
    expect(cm?.metadata?.labels?.[IMPORT_LABEL]).toBe('fed');
    expect(cm?.metadata?.ownerReferences).toEqual([{ apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: 'fed', uid: sai.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    expect(cm?.metadata?.managedFields?.map((f) => f.manager)).toEqual(['multicluster-service-account-controller']);
    expect(await readSecret(CLUSTER, ns, secretNameForImport('fed'))).toBeUndefined();
    expect((await core().listNamespacedSecret({ namespace: ns, labelSelector: IMPORT_LABEL })).items).toEqual([]);
  });

  it('mounts a projected volume of the ConfigMap and the pod\'s own token into a pod, beside a token import in the same pod', async () => {
    await waitForReady(CLUSTER, ns, 'fed', 'True', 'Federated');
    // The webhook's watch cache may be a moment behind the status just read.
    let pod: V1Pod | undefined;
    let stderr = '';
    await waitFor('the webhook to admit a pod naming the federated import', async () => ({ pod, stderr } = await dryRunPod(ns, 'fed')).pod !== undefined, 15_000, 200).catch(() => {
      throw new Error(`the pod was refused: ${stderr}`);
    });
    if (!pod) throw new Error(stderr);
    const volume = pod.spec!.volumes!.find((v) => v.name === volumeNameForImport('fed'));
    expect(volume?.projected?.sources).toEqual([
      { configMap: { name: configMapNameForImport('fed'), items: ['ca.crt', 'server', 'namespace', 'config'].map((key) => ({ key, path: key })) } },
      { serviceAccountToken: { path: 'token', audience: AUDIENCE, expirationSeconds: 3600 } },
    ]);
    for (const c of [...pod.spec!.initContainers!, ...pod.spec!.containers]) {
      expect(c.volumeMounts).toContainEqual({ name: volumeNameForImport('fed'), mountPath: `${MOUNT_ROOT}/fed`, readOnly: true });
    }
    // A token import (not Ready: no cluster of that name) in the same pod is mounted from its Secret, with a warning.
    await createImport(CLUSTER, { metadata: { name: 'tok', namespace: ns }, spec: { clusterName: 'no-such-cluster', namespace: ns, name: 'default' } });
    const mixed = await dryRunPod(ns, 'tok, fed');
    if (!mixed.pod) throw new Error(mixed.stderr);
    const names = mixed.pod.spec!.volumes!.map((v) => v.name);
    expect(names).toEqual(expect.arrayContaining([volumeNameForImport('tok'), volumeNameForImport('fed')]));
    expect(mixed.pod.spec!.volumes!.find((v) => v.name === volumeNameForImport('tok'))?.secret?.secretName).toBe(secretNameForImport('tok'));
    expect(mixed.stderr).toContain('service account import "tok"');
  });

  it('is refused by the API server when it mixes the modes (CEL rules)', async () => {
    const create = (name: string, spec: Record<string, unknown>) => () =>
      apis(CLUSTER).custom.createNamespacedCustomObject({ ...importsApi(ns), body: { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, metadata: { name }, spec } });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ mode: 'Federated', clusterName: SOURCE, namespace: ns, name: 'default' }, /a Federated import names no namespace, name or audiences/],
      [{ mode: 'Federated', clusterName: SOURCE, audiences: ['x'] }, /a Federated import names no namespace, name or audiences/],
      [{ mode: 'Federated', clusterName: SOURCE, expirationSeconds: 90_000 }, /the projected token of a Federated import lives at most 86400 seconds/],
      [{ clusterName: SOURCE, namespace: ns }, /a Token import names the remote ServiceAccount/],
      [{ mode: 'Token', clusterName: SOURCE }, /a Token import names the remote ServiceAccount/],
      [{ mode: 'Copied', clusterName: SOURCE, namespace: ns, name: 'default' }, /spec\.mode: Unsupported value: "Copied"/],
    ];
    for (const [spec, message] of cases) {
      const denied = await refusal(create(uniqueName('mix'), spec));
      expect(denied.code).toBe(422);
      expect(denied.message).toMatch(message);
    }
  });

  it('is ClusterNotFound while the record is gone, and the webhook denies its pods; Ready again when the record is back', async () => {
    await core().deleteNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD });
    const sai = await waitForReady(CLUSTER, ns, 'fed', 'False', 'ClusterNotFound');
    expect(sai.status?.conditions?.[0]?.message).toContain(`federated source "${SOURCE}" is not known`);
    await waitFor('the webhook to see the import not Ready', async () => (await dryRunPod(ns, 'fed')).stderr.includes('federated service account import "fed"'), 15_000, 200);
    const denied = await dryRunPod(ns, 'fed');
    expect(denied.pod).toBeUndefined();
    expect(denied.stderr).toContain(`federated service account import "fed" in namespace "${ns}" is not Ready (ClusterNotFound`);
    await writeRecord({ server: SERVER, 'ca.crt': 'not a certificate', audience: AUDIENCE });
    const invalid = await waitForReady(CLUSTER, ns, 'fed', 'False', 'InvalidFederatedSource');
    expect(invalid.status?.conditions?.[0]?.message).toContain(`ConfigMap ${INSTALL_NAMESPACE}/${RECORD}, is invalid: ca.crt holds no PEM certificate`);
    await writeRecord({ server: SERVER, 'ca.crt': clusterInfo('cluster2').caPem, audience: AUDIENCE });
    await waitForReady(CLUSTER, ns, 'fed', 'True', 'Federated');
  });

  it('deletes the ConfigMap of an import switched back to Token, and drops the federated status fields', async () => {
    await createImport(CLUSTER, { metadata: { name: 'switch', namespace: ns }, spec: { mode: 'Federated', clusterName: SOURCE } });
    await waitForReady(CLUSTER, ns, 'switch', 'True', 'Federated');
    expect(await readConfigMap(ns, configMapNameForImport('switch'))).toBeDefined();
    const patch = [{ op: 'replace', path: '/spec', value: { mode: 'Token', clusterName: 'no-such-cluster', namespace: ns, name: 'default' } }];
    const r = await kubectl(kubeconfigPath(), ['--context', CLUSTER, 'patch', 'sai', 'switch', '-n', ns, '--type=json', '-p', JSON.stringify(patch)]);
    if (r.code !== 0) throw new Error(r.stderr);
    const sai = await waitForReady(CLUSTER, ns, 'switch', 'False', 'ClusterNotFound');
    expect(sai.status?.audience).toBeUndefined();
    expect(sai.status?.expirationSeconds).toBeUndefined();
    await waitFor('the ConfigMap of the switched import to be deleted', async () => (await readConfigMap(ns, configMapNameForImport('switch'))) === undefined, 15_000, 100);
  });

  it('deletes the ConfigMap with the import', async () => {
    await createImport(CLUSTER, { metadata: { name: 'gone', namespace: ns }, spec: { mode: 'Federated', clusterName: SOURCE } });
    await waitForReady(CLUSTER, ns, 'gone', 'True', 'Federated');
    await apis(CLUSTER).custom.deleteNamespacedCustomObject({ ...importsApi(ns), name: 'gone' });
    await waitFor('the import to be gone', async () => (await getImport(CLUSTER, ns, 'gone')) === undefined, 15_000, 100);
    await waitFor('the ConfigMap to be deleted with its import', async () => (await readConfigMap(ns, configMapNameForImport('gone'))) === undefined, 30_000, 100);
  });

  it('confines the controller\'s ServiceAccount: no unlabelled or unowned ConfigMap, no deleting someone else\'s', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(await serviceAccountKubeconfig(CLUSTER, INSTALL_NAMESPACE, CONTROLLER_SA, path.join(tmp, 'controller.kubeconfig')));
    const asController = kc.makeApiClient(CoreV1Api);
    const policyDenial = /ValidatingAdmissionPolicy 'multicluster-service-account-controller-secrets' with binding 'multicluster-service-account-controller-secrets' denied request/;
    const plain = (name: string): V1ConfigMap => ({ metadata: { name, namespace: ns }, data: { k: 'v' } });
    await waitFor('the policy to deny the controller an unlabelled ConfigMap', async () => {
      const name = uniqueName('probe');
      try {
        await asController.createNamespacedConfigMap({ namespace: ns, body: plain(name) });
        await core().deleteNamespacedConfigMap({ namespace: ns, name });
        return false;
      } catch (e) {
        return e instanceof ApiException && e.code === 403 && policyDenial.test(String(e.body));
      }
    }, 30_000, 200);
    const unowned = plain(uniqueName('unowned'));
    unowned.metadata!.labels = { [IMPORT_LABEL]: 'fed' };
    const denied = await refusal(() => asController.createNamespacedConfigMap({ namespace: ns, body: unowned }));
    expect(denied.code).toBe(403);
    expect(denied.message).toMatch(policyDenial);
    const someoneElses = uniqueName('someone-elses');
    await core().createNamespacedConfigMap({ namespace: ns, body: plain(someoneElses) });
    const deleteDenied = await refusal(() => asController.deleteNamespacedConfigMap({ namespace: ns, name: someoneElses }));
    expect(deleteDenied.code).toBe(403);
    expect(deleteDenied.message).toMatch(policyDenial);
    expect(await readConfigMap(ns, someoneElses)).toBeDefined();
  });
});
