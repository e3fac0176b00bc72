import { packageVersion } from '../../src/version.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { IMPORT_ANNOTATION } from '../../src/constants.js';
import { mountPathForImport, secretNameForImport, volumeNameForImport } from '../../src/naming.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../harness/install.js';
import {
  createImport,
  createWebhookConfiguration,
  ensureCrd,
  scopeName,
  startWebhook,
  TEST_SCOPE_LABEL,
  type RunningWebhook,
  webhookIdentity,
} from './webhook-process.js';

const CLUSTER = 'cluster1';

/** Volumes and mounts the webhook added, as `{import → [container names]}` (a stable summary). */
function mounted(pod: V1Pod): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of pod.spec?.volumes ?? []) {
    if (!v.name.startsWith('mcsa-')) continue;
    const name = v.secret?.secretName?.replace(/-token-[a-z0-9]{5}$/, '') ?? '?';
    expect(v.secret?.secretName).toBe(secretNameForImport(name));
    expect(v.name).toBe(volumeNameForImport(name));
    const users = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
      .filter((c) => (c.volumeMounts ?? []).some((m) => m.name === v.name && m.mountPath === mountPathForImport(name) && m.readOnly === true))
      .map((c) => c.name);
    out[name] = users;
  }
  return out;
}

function podManifest(name: string, namespace: string, annotation?: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, ...(annotation !== undefined ? { annotations: { [IMPORT_ANNOTATION]: annotation } } : {}) },
    spec: {
      initContainers: [{ name: 'init', image: 'busybox' }],
      containers: [
        { name: 'app', image: 'busybox', volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] },
        { name: 'sidecar', image: 'busybox' },
      ],
      volumes: [{ name: 'scratch', emptyDir: {} }],
    },
  };
}

describe('webhook admission against a real API server', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let webhook: RunningWebhook | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let enabled: string;
  let disabled: string;
  let tmp: string;
  const kubeconfig = () => clusterInfo(CLUSTER).kubeconfigPath;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    core = kc.makeApiClient(CoreV1Api);
    await ensureCrd(CLUSTER);
    const scope = scopeName();
    const install = await createTestNamespace(CLUSTER, 'wh-install');
    cleanups.push(install.delete);
    const mwcName = `mcsa-${scope}`;
    // The process runs as the manifest's ServiceAccount with exactly the manifest's RBAC.
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mcsa-wh-id-'));
    cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));
    const identity = await webhookIdentity(CLUSTER, install.name, mwcName, tmp);
    cleanups.push(identity.delete);
    webhook = await startWebhook({ cluster: CLUSTER, installNamespace: install.name, webhookConfigName: mwcName, kubeconfigPath: identity.kubeconfigPath });
    cleanups.push(() => webhook!.stop());
    const mwc = await createWebhookConfiguration(kc, mwcName, webhook.port, scope);
    cleanups.push(mwc.delete);
    const on = await createTestNamespace(CLUSTER, 'wh-on', { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: scope });
    cleanups.push(on.delete);
    const off = await createTestNamespace(CLUSTER, 'wh-off', { [TEST_SCOPE_LABEL]: scope });
    cleanups.push(off.delete);
    enabled = on.name;
    disabled = off.name;
    await createImport(CLUSTER, enabled, 'cluster2-pod-lister', true);
    await createImport(CLUSTER, enabled, 'cluster3.reader', true);
    await createImport(CLUSTER, enabled, 'not-ready-yet', false);
    // The webhook patches the caBundle itself; wait until the API server calls it successfully.
    await waitFor(
      'the API server to call the webhook',
      async () => {
        const r = await kubectl(kubeconfig(), ['create', '--dry-run=server', '-f', '-'], JSON.stringify(podManifest('probe', enabled, 'no-such-import')));
        return r.code !== 0 && r.stderr.includes('service account import "no-such-import" not found');
      },
      60_000,
      250,
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  it('mounts an import into every container and init container of a Pod', async () => {
    await core.createNamespacedPod({ namespace: enabled, body: podManifest('one', enabled, 'cluster2-pod-lister') });
    const pod = await core.readNamespacedPod({ namespace: enabled, name: 'one' });
    expect(mounted(pod)).toEqual({ 'cluster2-pod-lister': ['init', 'app', 'sidecar'] });
    // The pod's own volume and mount are kept.
    expect(pod.spec?.volumes?.some((v) => v.name === 'scratch')).toBe(true);
    expect(pod.spec?.containers[0]?.volumeMounts?.some((m) => m.name === 'scratch' && m.mountPath === '/scratch')).toBe(true);
  });

  it('mounts several imports from one annotation (trimmed, de-duplicated, empty entries ignored)', async () => {
    await core.createNamespacedPod({ namespace: enabled, body: podManifest('several', enabled, ' cluster2-pod-lister ,cluster3.reader,,cluster2-pod-lister') });
    const pod = await core.readNamespacedPod({ namespace: enabled, name: 'several' });
    expect(mounted(pod)).toEqual({ 'cluster2-pod-lister': ['init', 'app', 'sidecar'], 'cluster3.reader': ['init', 'app', 'sidecar'] });
  });

  it('leaves unannotated pods and pods in namespaces without the label untouched', async () => {
    await core.createNamespacedPod({ namespace: enabled, body: podManifest('plain', enabled) });
    const plain = await core.readNamespacedPod({ namespace: enabled, name: 'plain' });
    expect(plain.spec?.volumes?.map((v) => v.name)).toEqual(['scratch']);
    // Not selected: even a missing import is not looked at.
    await core.createNamespacedPod({ namespace: disabled, body: podManifest('elsewhere', disabled, 'no-such-import') });
    const elsewhere = await core.readNamespacedPod({ namespace: disabled, name: 'elsewhere' });
    expect(elsewhere.spec?.volumes?.map((v) => v.name)).toEqual(['scratch']);
  });

  it('mutates pods created by the Job and Deployment controllers', async () => {
    const template = {
      metadata: { labels: { app: 'x' }, annotations: { [IMPORT_ANNOTATION]: 'cluster2-pod-lister' } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'busybox' }] },
    };
    await kc.makeApiClient(BatchV1Api).createNamespacedJob({
      namespace: enabled,
      body: { metadata: { name: 'job' }, spec: { backoffLimit: 0, template } },
    });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: enabled,
      body: {
        metadata: { name: 'deploy' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'deploy' } },
          template: { ...template, metadata: { ...template.metadata, labels: { app: 'deploy' } }, spec: { containers: template.spec.containers } },
        },
      },
    });
    for (const selector of ['job-name=job', 'app=deploy']) {
      let pods: V1Pod[] = [];
      await waitFor(`a pod for ${selector}`, async () => {
        pods = (await core.listNamespacedPod({ namespace: enabled, labelSelector: selector })).items;
        return pods.length > 0;
      }, 60_000, 200);
      expect(pods[0]!.metadata?.namespace).toBe(enabled);
      expect(mounted(pods[0]!)).toEqual({ 'cluster2-pod-lister': ['app'] });
    }
  });

  it('works with kubectl create --dry-run=server', async () => {
    const r = await kubectl(kubeconfig(), ['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(podManifest('dry', enabled, 'cluster3.reader')));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(mounted(JSON.parse(r.stdout) as V1Pod)).toEqual({ 'cluster3.reader': ['init', 'app', 'sidecar'] });
    await expect(core.readNamespacedPod({ namespace: enabled, name: 'dry' })).rejects.toThrow();
  });

  it('denies a pod naming a missing import, with the import and namespace in the message', async () => {
    const r = await kubectl(kubeconfig(), ['create', '-f', '-'], JSON.stringify(podManifest('missing', enabled, 'cluster2-pod-lister,nope')));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('denied the request');
    expect(r.stderr).toContain(`service account import "nope" not found in namespace "${enabled}"`);
    expect(r.stderr).not.toContain('cluster2-pod-lister" not found');
  });

  it('denies an invalid import name', async () => {
    const r = await kubectl(kubeconfig(), ['create', '-f', '-'], JSON.stringify(podManifest('invalid', enabled, 'Bad_Name')));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"Bad_Name" is not a valid import name');
  });

  it('admits a pod whose import is not Ready yet, with a warning kubectl prints', async () => {
    const r = await kubectl(kubeconfig(), ['create', '-f', '-'], JSON.stringify(podManifest('waiting', enabled, 'not-ready-yet')));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Warning: service account import "not-ready-yet"');
    expect(r.stderr).toContain('is not Ready (ClusterNotFound');
    const pod = await core.readNamespacedPod({ namespace: enabled, name: 'waiting' });
    expect(mounted(pod)).toEqual({ 'not-ready-yet': ['init', 'app', 'sidecar'] });
  });

  it('admits the pod of a Job applied in the same kubectl apply as its import', async () => {
    const docs = [
      {
        apiVersion: 'multicluster.admiralty.io/v1alpha1',
        kind: 'ServiceAccountImport',
        metadata: { name: 'same-apply', namespace: enabled },
        spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' },
      },
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'same-apply', namespace: enabled },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { annotations: { [IMPORT_ANNOTATION]: 'same-apply' } },
            spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'busybox' }] },
          },
        },
      },
    ];
    const r = await kubectl(kubeconfig(), ['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    let pods: V1Pod[] = [];
    await waitFor('the Job to create its pod', async () => {
      pods = (await core.listNamespacedPod({ namespace: enabled, labelSelector: 'job-name=same-apply' })).items;
      return pods.length > 0;
    }, 60_000, 200);
    expect(mounted(pods[0]!)).toEqual({ 'same-apply': ['app'] });
  });

  it('exposes controller-runtime webhook metrics', async () => {
    const text = await webhook!.metrics();
    expect(text).toMatch(/controller_runtime_webhook_requests_total\{webhook="\/mutate-pods",code="200"\} [1-9]/);
    expect(text).toContain('controller_runtime_webhook_latency_seconds_bucket');
    expect(text).toContain('controller_runtime_webhook_requests_in_flight');
    expect(text).toMatch(/mcsa_webhook_admissions_total\{webhook="\/mutate-pods",decision="denied",mutated="false"\} [1-9]/);
    expect(text).toContain(`mcsa_build_info{component="webhook",version="${packageVersion()}"} 1`);
  });
});
