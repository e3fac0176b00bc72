// The getting-started scenario on real nodes (issue 14): install.yaml applied through a kustomize
// overlay that only sets the image, the controller and the webhook as pods of the built image
// (in-cluster config, probes, securityContext, two webhook replicas, the PDB), and the
// multicluster-client Job's pod listing cluster2's pods with the files the kubelet mounted; then
// webhook and controller pods deleted or scaled away, as operators and nodes do.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CLIENT_REF, PROJECT_REF, buildImages } from '../../../scripts/image.js';
import { readTar } from '../../../scripts/oci.js';
import { API_GROUP, API_VERSION, IMPORT_ANNOTATION, INSTALL_NAMESPACE, ROTATE_ANNOTATION } from '../../../src/constants.js';
import { bootstrap, grantPodLister, IMPORT_NAME as IMPORT, importServiceAccount, installFromOverlay, k, removeSourceObjects, runClientJob, sourceObjects, writeOverlay } from '../../harness/demo-nodes.js';
import { kubectl, testClusters } from '../../harness/env.js';
import { waitFor } from '../../harness/https.js';
import { SANDBOX_IMAGE } from '../../harness/node.js';

const ROTATIONS = 10;
const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-e2e-nodes-'));

interface PodList {
  items: { metadata: { name: string }; spec: { containers: { image: string }[] }; status: { phase: string; containerStatuses?: { ready: boolean }[] } }[];
}

beforeAll(async () => {
  await installFromOverlay('cluster1', writeOverlay(path.join(work, 'overlay')));
}, 240_000);

afterAll(async () => {
  await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'delete', 'job/multicluster-client', `serviceaccountimports.${API_GROUP}/${IMPORT}`, '--ignore-not-found', '--wait=false']);
  await removeSourceObjects();
  rmSync(work, { recursive: true, force: true });
}, 150_000);

describe('installed from install.yaml on real nodes', () => {
  it('runs both Deployments from the built image, Available, with two webhook replicas and the PDBs', async () => {
    const deployments = JSON.parse(await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'deployments', '-o', 'json'])) as { items: { metadata: { name: string }; status: { availableReplicas?: number } }[] };
    expect(Object.fromEntries(deployments.items.map((d) => [d.metadata.name, d.status.availableReplicas]))).toEqual({
      'multicluster-service-account-controller': 2,
      'multicluster-service-account-webhook': 2,
    });
    const pods = JSON.parse(await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'pods', '-o', 'json'])) as PodList;
    expect(pods.items).toHaveLength(4);
    for (const p of pods.items) {
      expect(p.spec.containers.map((c) => c.image)).toEqual([PROJECT_REF]);
      expect(p.status.phase).toBe('Running');
      expect(p.status.containerStatuses?.every((c) => c.ready)).toBe(true);
    }
    const pdbs = await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'pdb', '-o', 'name']);
    expect(pdbs.trim().split('\n').sort()).toEqual(['poddisruptionbudget.policy/multicluster-service-account-controller', 'poddisruptionbudget.policy/multicluster-service-account-webhook']);
  });

  it('runs as UID 65532 on a read-only root filesystem, with the kubelet-projected in-cluster credentials', async () => {
    const script = [
      "const fs = require('node:fs');",
      "let ro = 'writable'; try { fs.writeFileSync('/app/x', 'x'); } catch (e) { ro = e.code; }",
      "const dir = '/var/run/secrets/kubernetes.io/serviceaccount';",
      'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), ro, host: process.env.KUBERNETES_SERVICE_HOST, files: fs.readdirSync(dir).filter((f) => !f.startsWith("..")).sort() }));',
    ].join(' ');
    const out = JSON.parse(await k('cluster1', ['-n', INSTALL_NAMESPACE, 'exec', 'deployment/multicluster-service-account-webhook', '--', 'node', '-e', script])) as Record<string, unknown>;
    expect(out).toEqual({ uid: 65532, gid: 65532, ro: 'EROFS', host: '198.19.0.1', files: ['ca.crt', 'namespace', 'token'] });
  });

  it('has no shell in the image, and building it again gives the same digests', async () => {
    const { images } = testClusters();
    const digestOf = (file: string) => {
      const index = readTar(readFileSync(file)).find((e) => e.path === '/index.json');
      return (JSON.parse(index?.type === 'file' ? index.data.toString() : '{}') as { manifests: { digest: string }[] }).manifests[0]!.digest;
    };
    const again = await buildImages(path.join(work, 'images'));
    expect(Object.fromEntries(again.map((i) => [i.ref, i.digest]))).toEqual({ [PROJECT_REF]: digestOf(images![PROJECT_REF]!), [CLIENT_REF]: digestOf(images![CLIENT_REF]!) });
    const archive = readTar(readFileSync(again[0]!.file));
    const layers = archive.filter((e) => e.type === 'file' && e.path.startsWith('/blobs/') && e.data.length > 1024 && e.data.subarray(257, 262).toString() === 'ustar');
    const paths = layers.flatMap((l) => (l.type === 'file' ? readTar(l.data).map((e) => e.path) : []));
    expect(paths).toContain('/nodejs/bin/node');
    expect(paths).toContain('/app/streams/webhook/main.js');
    // The entry points are self-contained bundles (ADR 0019): no node_modules, no library tree.
    expect(paths.filter((p) => p.includes('/node_modules/') || p.startsWith('/app/src/'))).toEqual([]);
    expect(paths.filter((p) => /\/(sh|bash|dash|busybox|apt|apt-get|dpkg)$/.test(p))).toEqual([]);
  }, 240_000);
});

describe('getting started on real nodes', () => {
  it("the multicluster-client Job's pod lists cluster2's nginx pods (kubectl logs)", async () => {
    await sourceObjects();
    // The controller runs in a pod of cluster1: it reaches cluster2 at the address pods use.
    await bootstrap();
    await grantPodLister();
    await importServiceAccount();
    const logs = await runClientJob();
    const nginx = JSON.parse(await k('cluster2', ['get', 'pods', '-l', 'app=nginx', '-o', 'json'])) as PodList;
    expect(nginx.items).toHaveLength(2);
    expect(logs.trim().split('\n').sort()).toEqual([...nginx.items.map((p) => `${IMPORT}\tdefault/${p.metadata.name}`), `${IMPORT}: 2 pods`].sort());
  }, 300_000);

  it(`a long-running client pod makes 0 failed calls to cluster2 across ${ROTATIONS} forced rotations (the kubelet's Secret updates)`, async () => {
    // examples/watch-client.ts (in the client image) follows the mount with the config library's
    // observable loader, calls cluster2 every 200 ms, and prints its counts and the kubelet's
    // current `..data` generation of the mount every second (never the token).
    await k('cluster1', ['apply', '--server-side', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'rotating-client', namespace: 'default', labels: { e2e: 'annotated' }, annotations: { [IMPORT_ANNOTATION]: IMPORT } },
      spec: { restartPolicy: 'Never', securityContext: { runAsNonRoot: true, runAsUser: 65532 },
        containers: [{ name: 'client', image: CLIENT_REF, command: ['node', 'watch-client.js', IMPORT, '200'], securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false } }] },
    }));
    const last = async () => {
      const lines = (await k('cluster1', ['logs', 'rotating-client', '--tail=20'])).trim().split('\n').filter((l) => l.startsWith('{'));
      return lines.length ? (JSON.parse(lines.at(-1)!) as { ok: number; failed: number; generation: string }) : undefined;
    };
    const secretToken = async () => {
      const name = await k('cluster1', ['get', `serviceaccountimports.${API_GROUP}/${IMPORT}`, '-o', 'jsonpath={.status.secrets[0].name}']);
      const b64 = await k('cluster1', ['get', 'secret', name, '-o', 'jsonpath={.data.token}']);
      return createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');
    };
    await waitFor('the client pod to call cluster2', async () => ((await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'logs', 'rotating-client'])).code === 0 ? ((await last())?.ok ?? 0) > 0 : false), 120_000, 1000);
    const generations = new Set<string>();
    for (let i = 1; i <= ROTATIONS; i++) {
      const before = await secretToken();
      const mounted = (await last())!.generation;
      expect(mounted).toMatch(/^\.\.\d{4}_/);
      generations.add(mounted);
      await k('cluster1', ['annotate', `serviceaccountimports.${API_GROUP}/${IMPORT}`, `${ROTATE_ANNOTATION}=e2e-${i}-${Date.now()}`, '--overwrite']);
      await waitFor(`rotation ${i}: a new token in the Secret`, async () => (await secretToken()) !== before, 60_000, 250);
      // The kubelet writes a new generation of the volume only when the Secret's data changed.
      await waitFor(`rotation ${i}: the kubelet to update the pod's mounted Secret`, async () => ((await last())?.generation ?? mounted) !== mounted, 120_000, 500);
    }
    generations.add((await last())!.generation);
    expect(generations.size).toBe(ROTATIONS + 1);
    const counts = await last();
    expect(counts?.failed).toBe(0);
    expect(counts?.ok).toBeGreaterThan(ROTATIONS * 10);
  }, 1_200_000);

  it('denies a pod naming a missing import', async () => {
    const r = await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'names-a-missing-import', namespace: 'default', annotations: { [IMPORT_ANNOTATION]: 'no-such-import' } },
      spec: { containers: [{ name: 'c', image: SANDBOX_IMAGE }] },
    }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/denied the request: .*service account import "no-such-import" not found in namespace "default"/);
  });
});

describe('resilience on real nodes', () => {
  const annotatedPod = () => JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'annotated-', namespace: 'default', labels: { e2e: 'annotated' }, annotations: { [IMPORT_ANNOTATION]: IMPORT } },
    spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: SANDBOX_IMAGE }] },
  });
  const createAnnotated = () => kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'create', '-o', 'json', '-f', '-'], annotatedPod());
  afterAll(async () => {
    await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'delete', 'pods', '-l', 'e2e=annotated', '--wait=false']);
  });

  it('deleting one webhook pod: annotated pods keep being admitted, mounted and started', async () => {
    const webhooks = JSON.parse(await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/component=webhook', '-o', 'json'])) as PodList;
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'delete', 'pod', webhooks.items[0]!.metadata.name, '--wait=false']);
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await createAnnotated();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const pod = JSON.parse(r.stdout) as { metadata: { name: string }; spec: { volumes?: { secret?: { secretName: string } }[] } };
      expect(pod.spec.volumes?.some((v) => v.secret?.secretName.startsWith(`${IMPORT}-token-`))).toBe(true);
      names.push(pod.metadata.name);
    }
    await k('cluster1', ['wait', '--for=jsonpath={.status.phase}=Running', '--timeout=120s', ...names.map((n) => `pod/${n}`)]);
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'wait', '--for=condition=Available', 'deployment/multicluster-service-account-webhook', '--timeout=120s']);
  }, 180_000);

  it("the webhook's own pods start while its webhook is unavailable", async () => {
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'scale', 'deployment/multicluster-service-account-webhook', '--replicas=0']);
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'wait', '--for=delete', 'pod', '-l', 'app.kubernetes.io/component=webhook', '--timeout=120s']);
    const denied = await createAnnotated();
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/failed calling webhook/);
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'scale', 'deployment/multicluster-service-account-webhook', '--replicas=2']);
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'wait', '--for=condition=Available', 'deployment/multicluster-service-account-webhook', '--timeout=120s']);
    await waitFor('an annotated pod to be admitted again', async () => (await createAnnotated()).code === 0, 60_000, 500);
  }, 240_000);

  it("deleting the controller's leader pod: a replacement leads and converges", async () => {
    const holder = async () => (await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'lease', 'multicluster-service-account-controller', '-o', 'jsonpath={.spec.holderIdentity}'])).split('_')[0]!;
    const leader = await holder();
    expect(leader).toMatch(/^multicluster-service-account-controller-/);
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'delete', 'pod', leader, '--wait=false']);
    await waitFor('another controller pod to lead', async () => {
      const now = await holder();
      return now !== '' && now !== leader;
    }, 120_000, 500);
    const second = `${IMPORT}-again`;
    await k('cluster1', ['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', metadata: { name: second, namespace: 'default' }, spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' } }));
    try {
      await k('cluster1', ['wait', '--for=condition=Ready', `serviceaccountimports.${API_GROUP}/${second}`, '--timeout=120s']);
    } finally {
      await k('cluster1', ['delete', `serviceaccountimports.${API_GROUP}/${second}`, '--wait=false']);
    }
    await k('cluster1', ['-n', INSTALL_NAMESPACE, 'wait', '--for=condition=Available', 'deployment/multicluster-service-account-controller', '--timeout=120s']);
  }, 240_000);
});
