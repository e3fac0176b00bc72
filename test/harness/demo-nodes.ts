// The getting-started scenario on clusters with real nodes (the default of `npm run sandbox`):
// install.yaml through a kustomize overlay that only sets the image, the controller and webhook as
// pods of the built image, and the multicluster-client Job as a pod whose `kubectl logs` lists
// cluster2's pods. Each step prints what it did; nothing here is mocked.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { CLIENT_REF, PROJECT_REF } from '../../scripts/image.js';
import { API_GROUP, API_VERSION, IMPORT_ANNOTATION, INSTALL_NAMESPACE } from '../../src/constants.js';
import { clusterInfo, kubectl, testClusters } from './env.js';
import { GiveUp, waitFor } from './https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from './install.js';
import { SANDBOX_IMAGE } from './node.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const IMPORT_NAME = 'cluster2-default-pod-lister';

/** kubectl against one context of the running set; throws with stderr on failure. */
export async function k(context: string, args: string[], input?: string): Promise<string> {
  const r = await kubectl(testClusters().kubeconfigPath, ['--context', context, ...args], input);
  if (r.code !== 0) throw new Error(`kubectl --context ${context} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
const apply = (context: string, obj: unknown) => k(context, ['apply', '--server-side', '-f', '-'], JSON.stringify(obj));

/** Writes the overlay a user would: install.yaml as published, only the image changed. */
export function writeOverlay(dir: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(ROOT, 'manifests', 'install.yaml'), path.join(dir, 'install.yaml'));
  const at = PROJECT_REF.lastIndexOf(':');
  writeFileSync(path.join(dir, 'kustomization.yaml'), stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: ['install.yaml'],
    images: [{ name: 'ghcr.io/multicluster-service-account/multicluster-service-account', newName: PROJECT_REF.slice(0, at), newTag: PROJECT_REF.slice(at + 1) }],
  }));
  return dir;
}

/** `kubectl apply -k overlay` into `context`, then waits for both Deployments to be Available. */
export async function installFromOverlay(context: string, overlay: string): Promise<void> {
  await k(context, ['apply', '--server-side', '-k', overlay]);
  await k(context, ['-n', INSTALL_NAMESPACE, 'wait', '--for=condition=Available', 'deployment', '--all', '--timeout=180s']);
}

function kubemcsa(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/kubemcsa.ts', ...args], { cwd: ROOT, env: { ...process.env, KUBECONFIG: testClusters().kubeconfigPath }, timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** `kubemcsa bootstrap` with the address a pod of cluster1 (the controller) uses for cluster2. */
export async function bootstrap(): Promise<string> {
  const boot = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-server', clusterInfo('cluster2').podServer!, '--wait', '--timeout', '120s']);
  if (boot.code !== 0) throw new Error(`kubemcsa bootstrap failed: ${boot.stderr}`);
  return boot.stderr;
}

/** In cluster2: ServiceAccount pod-lister, a Role that can list pods, its RoleBinding, and two "nginx" pods. */
export async function sourceObjects(): Promise<void> {
  await apply('cluster2', { apiVersion: 'v1', kind: 'List', items: [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'pod-lister', namespace: 'default' } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pod-lister', namespace: 'default' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'pod-lister', namespace: 'default' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-lister' }, subjects: [{ kind: 'ServiceAccount', name: 'pod-lister', namespace: 'default' }] },
    // Stands in for nginx without a registry: an image every node has.
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'nginx', namespace: 'default' }, spec: { replicas: 2, selector: { matchLabels: { app: 'nginx' } },
      template: { metadata: { labels: { app: 'nginx' } }, spec: { containers: [{ name: 'nginx', image: SANDBOX_IMAGE }] } } } },
  ] });
  await k('cluster2', ['wait', '--for=condition=Available', 'deployment/nginx', '--timeout=120s']);
}

/**
 * Removes what `sourceObjects` created and waits until the Deployment's pods are gone too, so the
 * suite after this one (whichever it is) finds cluster2 as it was. Tolerates objects already gone.
 */
export async function removeSourceObjects(): Promise<void> {
  await k('cluster2', ['-n', 'default', 'delete', 'deployment/nginx', 'serviceaccount/pod-lister', 'role/pod-lister', 'rolebinding/pod-lister', '--ignore-not-found', '--wait=false']);
  await waitFor('the nginx Deployment, its ReplicaSets and pods, and pod-lister gone from cluster2', async () =>
    (await k('cluster2', ['-n', 'default', 'get', 'deployments,replicasets,pods,serviceaccounts,roles,rolebindings', '-o', 'name'])).split('\n').every((o) => !/\/(nginx|pod-lister)(-|$)/.test(o)), 120_000, 1000);
}

/** In cluster2, its admin grants ServiceAccount default/pod-lister to cluster1 (the source's consent). */
export async function grantPodLister(): Promise<string> {
  const r = await kubemcsa(['grant', 'pod-lister', '-n', 'default', '--target-name', 'cluster1', '--source-context', 'cluster2']);
  if (r.code !== 0) throw new Error(`kubemcsa grant failed: ${r.stderr}`);
  return r.stderr;
}

/** In cluster1: enables namespace default, creates the import and waits for it to be Ready. */
export async function importServiceAccount(): Promise<string> {
  await k('cluster1', ['label', 'namespace', 'default', `${NAMESPACE_ENABLED_LABEL}=${NAMESPACE_ENABLED_VALUE}`, '--overwrite']);
  await apply('cluster1', { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', metadata: { name: IMPORT_NAME, namespace: 'default' }, spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' } });
  await k('cluster1', ['wait', '--for=condition=Ready', `serviceaccountimports.${API_GROUP}/${IMPORT_NAME}`, '--timeout=120s']);
  return k('cluster1', ['get', `serviceaccountimports.${API_GROUP}/${IMPORT_NAME}`, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].message}']);
}

/** In cluster1: the multicluster-client Job (the client image), annotated with the import; returns its `kubectl logs`. */
export async function runClientJob(): Promise<string> {
  await apply('cluster1', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'multicluster-client', namespace: 'default' }, spec: { backoffLimit: 0, template: {
    metadata: { annotations: { [IMPORT_ANNOTATION]: IMPORT_NAME } },
    spec: { restartPolicy: 'Never', containers: [{ name: 'client', image: CLIENT_REF }] },
  } } });
  await waitFor('job/multicluster-client to finish', async () => {
    const job = JSON.parse(await k('cluster1', ['get', 'job/multicluster-client', '-o', 'json'])) as { status: { conditions?: { type: string; status: string }[] } };
    const done = (job.status.conditions ?? []).find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    if (done?.type === 'Failed') throw new GiveUp(`the Job failed: ${(await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'logs', 'job/multicluster-client'])).stdout}`);
    return done !== undefined;
  }, 120_000, 500);
  return k('cluster1', ['logs', 'job/multicluster-client']);
}

/** Plays the scenario on a running set with nodes (`cluster1` target, `cluster2` source). */
export async function playGettingStartedOnNodes(say: (step: string, detail?: string) => void, parentDir = os.tmpdir()): Promise<void> {
  const work = mkdtempSync(path.join(parentDir, 'demo-'));
  say(`install into cluster1: kubectl apply -k an overlay of manifests/install.yaml setting the image ${PROJECT_REF}`);
  await installFromOverlay('cluster1', writeOverlay(path.join(work, 'overlay')));
  say('', await k('cluster1', ['-n', INSTALL_NAMESPACE, 'get', 'deployments,pods', '-o', 'wide']));
  say(`bootstrap cluster1 ← cluster2 (kubemcsa bootstrap --source-server ${clusterInfo('cluster2').podServer})`);
  say('', (await bootstrap()).trim());
  say('in cluster2: ServiceAccount pod-lister, a Role that can list pods, its RoleBinding, an nginx Deployment');
  await sourceObjects();
  say('in cluster2, its admin grants ServiceAccount default/pod-lister to cluster1 (kubemcsa grant)');
  say('', (await grantPodLister()).trim());
  say(`in cluster1: label namespace default ${NAMESPACE_ENABLED_LABEL}=${NAMESPACE_ENABLED_VALUE}, create import ${IMPORT_NAME}`);
  say('', `import Ready: ${await importServiceAccount()}`);
  say(`in cluster1: the multicluster-client Job (${CLIENT_REF}), annotated with the import; kubectl logs job/multicluster-client:`);
  say('', (await runClientJob()).trimEnd());
}
