// Runs the controller the way its Deployment runs it (command, args, env of
// manifests/controller/deployment.yaml), as its own ServiceAccount, against the harness clusters.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { type ServiceAccountImport } from '../../src/api/import.js';
import { adminKubeConfig, createTestNamespace, kubectl, testClusters } from '../harness/env.js';
import { localRun, manifestContainer, serviceAccountKubeconfig, startLocal } from '../harness/deployment.js';
import { waitFor } from '../harness/https.js';
import { freePort } from '../harness/ports.js';
import type { ManagedProcess } from '../harness/process.js';
import { kubemcsa } from './cli-support.js';
import { POLICY_PLURAL } from '../../src/consent/policy.js';

export const CONTROLLER_SA = 'multicluster-service-account-controller';

/** Applies the CRD, the install namespace and the controller's RBAC to `cluster`. */
export async function installControllerPrerequisites(cluster = 'cluster1'): Promise<void> {
  const { kubeconfigPath } = testClusters();
  for (const f of ['manifests/crd/serviceaccountimports.yaml', 'manifests/crd/serviceaccountimportpolicies.yaml', 'manifests/namespace.yaml', 'manifests/controller/rbac.yaml']) {
    const r = await kubectl(kubeconfigPath, ['--context', cluster, 'apply', '--server-side', '--force-conflicts', '-f', f]);
    if (r.code !== 0) throw new Error(`kubectl apply -f ${f} failed: ${r.stderr}`);
  }
  const r = await kubectl(kubeconfigPath, ['--context', cluster, 'wait', '--for=condition=Established', 'crd/serviceaccountimports.multicluster.admiralty.io', '--timeout=30s']);
  if (r.code !== 0) throw new Error(`CRD not established: ${r.stderr}`);
}

const PAIR = ['--target-context', 'cluster1', '--source-context', 'cluster2'];

/** Runs `kubemcsa grant|revoke … --target-name cluster1 --source-context cluster2`; fails the test on error. */
export async function grantToCluster1(verb: 'grant' | 'revoke', args: string[]): Promise<string> {
  const r = await kubemcsa([verb, ...args, '--target-name', 'cluster1', '--source-context', 'cluster2']);
  if (r.code !== 0) throw new Error(`kubemcsa ${verb} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stderr;
}

const POLICY_GROUP = { group: API_GROUP, version: API_VERSION, plural: POLICY_PLURAL };

/**
 * A cluster-scoped ServiceAccountImportPolicy in `cluster` (the target); returns its deletion.
 * Only a cluster admin writes these: tests create them with the admin identity.
 */
export async function createPolicy(cluster: string, name: string, spec: Record<string, unknown>): Promise<() => Promise<void>> {
  const { custom } = apis(cluster);
  await custom.createClusterCustomObject({ ...POLICY_GROUP, body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImportPolicy', metadata: { name }, spec } });
  return async () => {
    await custom.deleteClusterCustomObject({ ...POLICY_GROUP, name }).catch(() => undefined);
  };
}

/**
 * What the controller suites start from: the CRDs and the controller's RBAC in cluster1, cluster2
 * registered there with `kubemcsa bootstrap`, and a namespace on each side (`<prefix>-…` in
 * cluster1, `<prefix>-src-…` in cluster2) with the consent both sides give: the source grants
 * every ServiceAccount of its namespace to cluster1 (`kubemcsa grant --all-service-accounts`),
 * and a ServiceAccountImportPolicy of the target maps the local namespace to it. `teardown`
 * deletes the namespaces and the policy, and unbootstraps (which removes the grant).
 */
export async function bootstrappedPair(prefix: string) {
  await installControllerPrerequisites('cluster1');
  let local: Awaited<ReturnType<typeof createTestNamespace>> | undefined;
  let remote: typeof local;
  let deletePolicy: (() => Promise<void>) | undefined;
  const teardown = async () => {
    await deletePolicy?.();
    await local?.delete();
    await remote?.delete();
    // --wait: the next suite must not find the install namespace still terminating.
    await kubemcsa(['unbootstrap', ...PAIR, '--wait']);
  };
  try {
    const boot = await kubemcsa(['bootstrap', ...PAIR]);
    if (boot.code !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);
    local = await createTestNamespace('cluster1', prefix);
    remote = await createTestNamespace('cluster2', `${prefix}-src`);
    await grantToCluster1('grant', ['--all-service-accounts', '-n', remote.name]);
    deletePolicy = await createPolicy('cluster1', `${local.name}-to-${remote.name}`.slice(0, 253), { mappings: [{ namespace: local.name, remoteNamespace: remote.name }] });
  } catch (e) {
    await teardown(); // what a half-done setup left
    throw e;
  }
  return { local, remote, teardown };
}

export interface RunningController {
  process: ManagedProcess;
  logFile: string;
  metricsPort: number;
  probesPort: number;
  /** The exposition text: every metric, or only those named (the endpoint's `name[]` filter, which skips the per-import series). */
  metrics(names?: readonly string[]): Promise<string>;
  /** Reads a single sample of a metric (first match of `name{labels}`), or undefined. */
  metric(name: string, labels?: string): Promise<number | undefined>;
  log(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function startController(opts: { cluster?: string; name?: string; extra?: string[]; compiled?: boolean | string; nodeFlags?: string[] } = {}): Promise<RunningController> {
  const cluster = opts.cluster ?? 'cluster1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-controller-'));
  const kubeconfig = await serviceAccountKubeconfig(cluster, INSTALL_NAMESPACE, CONTROLLER_SA, path.join(dir, 'kubeconfig'));
  const [metricsPort, probesPort] = [await freePort(), await freePort()];
  const run = localRun(manifestContainer('manifests/controller/deployment.yaml', 'controller'), {
    downwardEnv: { POD_NAMESPACE: INSTALL_NAMESPACE },
    overrides: { '--metrics-bind-address': `127.0.0.1:${metricsPort}`, '--health-probe-bind-address': `127.0.0.1:${probesPort}` },
    extra: ['--kubeconfig', kubeconfig, ...(opts.extra ?? [])],
    compiled: opts.compiled,
    nodeFlags: opts.nodeFlags,
  });
  const logFile = path.join(dir, 'controller.log');
  const proc = startLocal(opts.name ?? 'controller', run, logFile);
  const get = async (port: number, p: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${p}`);
    return { status: r.status, body: await r.text() };
  };
  await waitFor('the controller to be ready (/readyz)', async () => {
    if (!proc.running) throw new Error(`controller exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    return (await get(probesPort, '/readyz')).status === 200;
  }, 60_000, 200);
  const metrics = async (names: readonly string[] = []) => (await get(metricsPort, `/metrics${names.length > 0 ? `?${names.map((n) => `name[]=${encodeURIComponent(n)}`).join('&')}` : ''}`)).body;
  return {
    process: proc,
    logFile,
    metricsPort,
    probesPort,
    metrics,
    metric: async (name, labels = '') => {
      const line = (await metrics([name])).split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}` : ''}`) && (labels || /^[^{ ]+ /.test(l) || l.startsWith(`${name}{`)));
      return line ? Number(line.split(' ').pop()) : undefined;
    },
    log: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    kill: async () => {
      process.kill(-proc.pid, 'SIGKILL');
      await proc.exited;
    },
  };
}

/** Admin API clients for a cluster. */
export function apis(cluster: string) {
  const kc = adminKubeConfig(cluster);
  return { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

export async function getImport(cluster: string, namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
  try {
    return (await apis(cluster).custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL, name })) as ServiceAccountImport;
  } catch {
    return undefined;
  }
}

export async function createImport(cluster: string, sai: { metadata: { name: string; namespace: string; annotations?: Record<string, string> }; spec: Record<string, unknown> }): Promise<void> {
  await apis(cluster).custom.createNamespacedCustomObject({
    group: API_GROUP, version: API_VERSION, namespace: sai.metadata.namespace, plural: IMPORT_PLURAL,
    body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', ...sai },
  });
}

export async function readSecret(cluster: string, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await apis(cluster).core.readNamespacedSecret({ namespace, name });
  } catch {
    return undefined;
  }
}

/** Waits until the import's Ready condition has `status` (and `reason`, if given); returns the import. */
export async function waitForReady(cluster: string, namespace: string, name: string, status: 'True' | 'False', reason?: string, timeoutMs = 30_000): Promise<ServiceAccountImport> {
  let last: ServiceAccountImport | undefined;
  try {
    await waitFor(`import ${namespace}/${name} Ready=${status}${reason ? ` (${reason})` : ''}`, async () => {
      last = await getImport(cluster, namespace, name);
      const c = last?.status?.conditions?.find((x) => x.type === 'Ready');
      return c?.status === status && (!reason || c.reason === reason) && last?.status?.observedGeneration === last?.metadata.generation;
    }, timeoutMs, 100);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
  return last!;
}

export const tokenOf = (s: V1Secret | undefined) => (s?.data?.token ? Buffer.from(s.data.token, 'base64').toString('utf8') : undefined);

/** A ServiceAccount in `namespace` with a Role that may list pods there, and its RoleBinding. */
export async function createPodLister(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] } });
  await rbac.createNamespacedRoleBinding({ namespace, body: {
    metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  } });
}
