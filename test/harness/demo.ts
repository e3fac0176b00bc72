// The getting-started scenario on real local clusters, step by step (used by `npm run sandbox`
// and by its e2e test). Each step prints what it did; nothing here is mocked.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_ANNOTATION, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import type { ServiceAccountImport } from '../../src/api/import.js';
import { adminKubeConfig, testClusters } from './env.js';
import { waitFor } from './https.js';
import { installLocally, NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE, type LocalInstall } from './install.js';
import { writeSecretVolume } from './kubelet-volume.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const IMPORT_NAME = 'cluster2-default-pod-lister';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

export interface DemoResult {
  install: LocalInstall;
  secretConfig: string;
  podVolumes: V1Pod['spec'];
  clientOutput: string;
  work: string;
}

/** Plays the scenario on running clusters `cluster1` (target) and `cluster2` (source). */
export async function playGettingStarted(say: (step: string, detail?: string) => void, parentDir = os.tmpdir()): Promise<DemoResult> {
  const work = mkdtempSync(path.join(parentDir, 'demo-'));
  const c1 = adminKubeConfig('cluster1');
  const c2 = adminKubeConfig('cluster2');

  say('install into cluster1: CRD, namespace, RBAC, webhook configuration; controller and webhook as local processes');
  const install = await installLocally({ cluster: 'cluster1', dir: path.join(work, 'processes'), log: (m) => say('', m) });
  try {
    say('bootstrap cluster1 ← cluster2 (kubemcsa bootstrap)');
    const boot = await run(['--import', 'tsx', 'cli/kubemcsa.ts', 'bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--wait', '--timeout', '60s'], { KUBECONFIG: testClusters().kubeconfigPath });
    if (boot.code !== 0) throw new Error(`kubemcsa bootstrap failed: ${boot.stderr}`);
    for (const line of boot.stderr.trim().split('\n')) say('', line);

    say('in cluster2: ServiceAccount pod-lister, a Role that can list pods, its RoleBinding, an nginx Deployment');
    const core2 = c2.makeApiClient(CoreV1Api);
    const rbac2 = c2.makeApiClient(RbacAuthorizationV1Api);
    await core2.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'pod-lister' } } });
    await rbac2.createNamespacedRole({ namespace: 'default', body: { metadata: { name: 'pod-lister' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] } });
    await rbac2.createNamespacedRoleBinding({ namespace: 'default', body: {
      metadata: { name: 'pod-lister' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-lister' },
      subjects: [{ kind: 'ServiceAccount', name: 'pod-lister', namespace: 'default' }],
    } });
    await c2.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'default', body: {
      metadata: { name: 'nginx' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'nginx' } }, template: { metadata: { labels: { app: 'nginx' } }, spec: { containers: [{ name: 'nginx', image: 'nginx' }] } } },
    } });
    say('in cluster2, its admin grants ServiceAccount default/pod-lister to cluster1 (kubemcsa grant)');
    const grant = await run(['--import', 'tsx', 'cli/kubemcsa.ts', 'grant', 'pod-lister', '-n', 'default', '--target-name', 'cluster1', '--source-context', 'cluster2'], { KUBECONFIG: testClusters().kubeconfigPath });
    if (grant.code !== 0) throw new Error(`kubemcsa grant failed: ${grant.stderr}`);
    for (const line of grant.stderr.trim().split('\n')) say('', line);
    await waitFor('the nginx pods to exist in cluster2', async () => (await core2.listNamespacedPod({ namespace: 'default', labelSelector: 'app=nginx' })).items.length === 2, 60_000, 200);
    say('', 'nginx pods created in cluster2 (they stay Pending: there is no kubelet)');

    say(`in cluster1: label namespace default ${NAMESPACE_ENABLED_LABEL}=${NAMESPACE_ENABLED_VALUE}, create import ${IMPORT_NAME}`);
    const core1 = c1.makeApiClient(CoreV1Api);
    await core1.patchNamespace(
      { name: 'default', body: { metadata: { labels: { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const custom1 = c1.makeApiClient(CustomObjectsApi);
    await custom1.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: 'default', plural: IMPORT_PLURAL, body: {
      apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport',
      metadata: { name: IMPORT_NAME }, spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' },
    } });

    let sai: ServiceAccountImport | undefined;
    await waitFor(`import ${IMPORT_NAME} to be Ready`, async () => {
      sai = (await custom1.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: 'default', plural: IMPORT_PLURAL, name: IMPORT_NAME })) as ServiceAccountImport;
      return sai.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    }, 60_000, 200);
    const ready = sai!.status!.conditions!.find((c) => c.type === 'Ready')!;
    say('', `import Ready=${ready.status} (${ready.reason}): ${ready.message}`);

    say('in cluster1: the multicluster-client Job, annotated with the import');
    await c1.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: 'default', body: {
      metadata: { name: 'multicluster-client' },
      spec: { backoffLimit: 0, template: {
        metadata: { annotations: { [IMPORT_ANNOTATION]: IMPORT_NAME } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'client', image: 'multicluster-service-account:0.1.0', command: ['node', 'examples/multicluster-client.js'] }] },
      } },
    } });

    const secret = await core1.readNamespacedSecret({ namespace: 'default', name: secretNameForImport(IMPORT_NAME) });
    const secretConfig = Buffer.from(secret.data!.config!, 'base64').toString('utf8');
    say(`the Secret ${secret.metadata!.name}: keys ${Object.keys(secret.data!).sort().join(', ')}; its kubeconfig (the token stays in its own file):`, secretConfig.replace(/certificate-authority-data: \S+/, 'certificate-authority-data: <CA, base64>').trimEnd());

    let pod: V1Pod | undefined;
    await waitFor('the Job to create its pod', async () => {
      pod = (await core1.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=multicluster-client' })).items[0];
      return pod !== undefined;
    }, 60_000, 200);
    const spec = pod!.spec!;
    const volumes = (spec.volumes ?? []).filter((v) => v.secret?.secretName === secretNameForImport(IMPORT_NAME));
    const mounts = spec.containers.flatMap((c) => (c.volumeMounts ?? []).filter((m) => volumes.some((v) => v.name === m.name)).map((m) => `${c.name}: ${m.mountPath} (readOnly=${m.readOnly})`));
    say(`the Job's pod ${pod!.metadata!.name}: volume and mounts added by the webhook`, [...volumes.map((v) => `volume ${v.name} → Secret ${v.secret!.secretName}`), ...mounts].join('\n'));

    say('run the multicluster-client with the files that pod would see');
    const mountRoot = path.join(work, 'serviceaccountimports');
    await writeSecretVolume(path.join(mountRoot, IMPORT_NAME), Object.fromEntries(Object.entries(secret.data!).map(([k, v]) => [k, Buffer.from(v, 'base64')])));
    const client = await run(['--import', 'tsx', 'examples/multicluster-client.ts'], { MCSA_MOUNT_ROOT: mountRoot, KUBECONFIG: path.join(work, 'no-kubeconfig') });
    if (client.code !== 0) throw new Error(`multicluster-client failed: ${client.stderr}`);
    say('cluster2 pods, listed from cluster1 as cluster2\'s ServiceAccount default/pod-lister:', client.stdout.trimEnd());
    return { install, secretConfig, podVolumes: spec, clientOutput: client.stdout, work };
  } catch (e) {
    await install.stop();
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}

export { INSTALL_NAMESPACE };
