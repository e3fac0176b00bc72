// Smoke checks on the real clusters: what every later feature relies on.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiException,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { createCa, issueCertificate } from '../../src/tls/pki.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl, testClusters, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'mcsa-smoke-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tokenKubeconfig(cluster: string, token: string, namespace: string): string {
  const c = clusterInfo(cluster);
  const file = path.join(tmp, `${uniqueName('token')}.kubeconfig`);
  writeFileSync(file, stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'ctx',
    clusters: [{ name: 'c', cluster: { server: c.server, 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') } }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace } }],
  }), { mode: 0o600 });
  return file;
}

function statusOf(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

describe('real clusters', () => {
  it('client-node and kubectl reach every cluster', async () => {
    const { clusters, kubeconfigPath } = testClusters();
    expect(clusters.map((c) => c.name)).toEqual(['cluster1', 'cluster2']);
    for (const c of clusters) {
      const ns = await adminKubeConfig(c.name).makeApiClient(CoreV1Api).listNamespace();
      expect(ns.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
      const r = await kubectl(kubeconfigPath, ['--context', c.name, 'get', 'namespace', 'kube-system', '-o', 'name']);
      expect({ code: r.code, stdout: r.stdout.trim(), stderr: r.stderr }).toEqual({ code: 0, stdout: 'namespace/kube-system', stderr: '' });
    }
    const v = await kubectl(kubeconfigPath, ['version', '-o', 'json']);
    expect(JSON.parse(v.stdout).serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
  });

  describe('tokens and RBAC in cluster2', () => {
    let ns: Awaited<ReturnType<typeof createTestNamespace>>;
    let other: Awaited<ReturnType<typeof createTestNamespace>>;
    let token: string;
    beforeAll(async () => {
      ns = await createTestNamespace('cluster2', 'smoke');
      other = await createTestNamespace('cluster2', 'smoke-other');
      const kc = adminKubeConfig('cluster2');
      const core = kc.makeApiClient(CoreV1Api);
      const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
      await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'pod-lister' } } });
      await rbac.createNamespacedRole({ namespace: ns.name, body: {
        metadata: { name: 'pod-lister' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
      } });
      await rbac.createNamespacedRoleBinding({ namespace: ns.name, body: {
        metadata: { name: 'pod-lister' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-lister' },
        subjects: [{ kind: 'ServiceAccount', name: 'pod-lister', namespace: ns.name }],
      } });
      const tr = await core.createNamespacedServiceAccountToken({ namespace: ns.name, name: 'pod-lister', body: { spec: { expirationSeconds: 600 } } });
      token = tr.status?.token ?? '';
    });
    afterAll(async () => {
      await ns?.delete();
      await other?.delete();
    });

    it('issues a TokenRequest token with the granted expiry', () => {
      expect(token.split('.')).toHaveLength(3);
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
      expect(claims.sub).toBe(`system:serviceaccount:${ns.name}:pod-lister`);
      expect(claims.exp - claims.iat).toBe(600);
    });

    it('authenticates a kubeconfig with that token, and RBAC allows exactly what the Role grants', async () => {
      const file = tokenKubeconfig('cluster2', token, ns.name);
      const pods = await kubectl(file, ['get', 'pods', '-o', 'name']);
      expect(pods).toEqual({ code: 0, stdout: '', stderr: '' });
      const whoami = await kubectl(file, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
      expect(whoami.stdout).toBe(`system:serviceaccount:${ns.name}:pod-lister`);
      const secrets = await kubectl(file, ['get', 'secrets']);
      expect(secrets.code).toBe(1);
      expect(secrets.stderr).toMatch(/forbidden: User "system:serviceaccount:.*:pod-lister" cannot list resource "secrets"/);
      const elsewhere = await kubectl(file, ['get', 'pods', '-n', other.name]);
      expect(elsewhere.stderr).toMatch(/cannot list resource "pods" .* in the namespace "smoke-other-/);
      const create = await kubectl(file, ['auth', 'can-i', 'create', 'pods']);
      expect(create.stdout.trim()).toBe('no');
    });

    it('rejects cluster2 tokens in cluster1 (one issuer and key per cluster)', async () => {
      const file = tokenKubeconfig('cluster1', token, 'default');
      const r = await kubectl(file, ['get', 'pods']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Unauthorized|must be logged in/);
    });
  });

  it('garbage-collects a Secret whose owner is deleted', async () => {
    const ns = await createTestNamespace('cluster1', 'smoke-gc');
    try {
      const core = adminKubeConfig('cluster1').makeApiClient(CoreV1Api);
      const owner = await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'owner' } } });
      await core.createNamespacedSecret({ namespace: ns.name, body: {
        metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true }] },
        stringData: { a: 'b' },
      } });
      await core.deleteNamespacedConfigMap({ namespace: ns.name, name: 'owner' });
      await waitFor('the owned Secret to be garbage-collected', async () => {
        try {
          await core.readNamespacedSecret({ namespace: ns.name, name: 'owned' });
          return false;
        } catch (e) {
          return statusOf(e) === 404;
        }
      }, 60_000, 250);
    } finally {
      await ns.delete();
    }
  });

  it('runs Jobs: the job controller creates a (Pending) Pod', async () => {
    const ns = await createTestNamespace('cluster1', 'smoke-job');
    try {
      const kc = adminKubeConfig('cluster1');
      await kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: ns.name, body: {
        metadata: { name: 'hello' },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } },
      } });
      const core = kc.makeApiClient(CoreV1Api);
      await waitFor('the Job to create a Pod', async () => {
        const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'job-name=hello' });
        return pods.items.length === 1 && pods.items[0]!.status?.phase === 'Pending';
      }, 60_000, 250);
    } finally {
      await ns.delete();
    }
  });

  it('calls a MutatingWebhookConfiguration reached by url + caBundle when a pod is created', async () => {
    const ca = await createCa('smoke-webhook-ca');
    const serving = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
    const seen: string[] = [];
    const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const review = JSON.parse(body);
        seen.push(review.request.name ?? review.request.object?.metadata?.name);
        const patch = Buffer.from(JSON.stringify([{ op: 'add', path: '/metadata/labels', value: { mutated: 'yes' } }])).toString('base64');
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const marker = uniqueName('smoke-webhook');
    const ns = await createTestNamespace('cluster1', 'smoke-wh', { 'mcsa-smoke': marker });
    const kc: KubeConfig = adminKubeConfig('cluster1');
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    try {
      await admission.createMutatingWebhookConfiguration({ body: {
        metadata: { name: marker },
        webhooks: [{
          name: 'smoke.mcsa.test',
          clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(ca.certPem).toString('base64') },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'mcsa-smoke': marker } },
          admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 5,
        }],
      } });
      const core = kc.makeApiClient(CoreV1Api);
      // The apiserver picks up a new webhook configuration asynchronously.
      await waitFor('the webhook to mutate a new pod', async () => {
        const name = uniqueName('p');
        const pod = await core.createNamespacedPod({ namespace: ns.name, body: { metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
        return pod.metadata?.labels?.mutated === 'yes';
      }, 30_000, 250);
      expect(seen.length).toBeGreaterThan(0);
    } finally {
      await admission.deleteMutatingWebhookConfiguration({ name: marker }).catch(() => undefined);
      await ns.delete();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
