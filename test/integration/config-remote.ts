// Set-up shared by the config library's integration tests: in cluster2, a namespace with a couple
// of (Pending) pods and ServiceAccounts allowed to list them; TokenRequest tokens for those
// ServiceAccounts; and a local mount root where tokens are materialised as the kubelet would
// mount the controller's Secret.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiException, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { buildImportSecret } from '../../src/secret.js';
import { adminKubeConfig, clusterInfo, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { writeSecretVolume } from '../harness/kubelet-volume.js';

export const REMOTE = 'cluster2';

export interface RemoteNamespace {
  namespace: string;
  pods: string[];
  /** Mints a TokenRequest token for ServiceAccount `sa` (no token is ever logged). */
  mint(sa: string): Promise<string>;
  /** Creates ServiceAccount `sa`, bound to the pod-reader Role (the RoleBinding names it). */
  createServiceAccount(sa: string): Promise<void>;
  /** Deletes and recreates `sa` (new UID): every token minted for it before stops working. */
  recreateServiceAccount(sa: string): Promise<void>;
  delete(): Promise<void>;
}

const statusOf = (e: unknown) => (e instanceof ApiException ? e.code : undefined);

/** A namespace in cluster2 with `pods` Pending pods and a Role that may list them, bound to `serviceAccounts`. */
export async function remoteNamespace(prefix: string, serviceAccounts: string[], podCount = 2): Promise<RemoteNamespace> {
  const ns = await createTestNamespace(REMOTE, prefix);
  const kc = adminKubeConfig(REMOTE);
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const namespace = ns.name;
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'pod-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: serviceAccounts.map((name) => ({ kind: 'ServiceAccount', name, namespace })),
    },
  });
  const createServiceAccount = async (sa: string) => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } });
  };
  for (const sa of serviceAccounts) await createServiceAccount(sa);

  // Pods need the namespace's `default` ServiceAccount, which the controller-manager creates.
  const pods = Array.from({ length: podCount }, (_, i) => `remote-pod-${i + 1}`);
  for (const name of pods) {
    await waitFor(
      `pod ${namespace}/${name} to be created`,
      async () => {
        try {
          await core.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] } } });
        } catch (e) {
          if (statusOf(e) !== 409) throw e; // created by an attempt whose answer was lost
        }
        return true;
      },
      30_000,
      200,
    );
  }

  return {
    namespace,
    pods,
    createServiceAccount,
    async mint(sa) {
      const tr = await core.createNamespacedServiceAccountToken({ namespace, name: sa, body: { spec: { expirationSeconds: 3600 } } });
      const token = tr.status?.token;
      if (!token) throw new Error(`TokenRequest for ${namespace}/${sa} returned no token`);
      return token;
    },
    async recreateServiceAccount(sa) {
      await core.deleteNamespacedServiceAccount({ namespace, name: sa });
      await waitFor(
        `ServiceAccount ${namespace}/${sa} to be gone`,
        async () => {
          try {
            await core.readNamespacedServiceAccount({ namespace, name: sa });
            return false;
          } catch (e) {
            return statusOf(e) === 404;
          }
        },
        30_000,
        50,
      );
      await createServiceAccount(sa);
    },
    delete: () => ns.delete(),
  };
}

/** A temporary mount root (what `MCSA_MOUNT_ROOT` points at) and its removal. */
export async function mountRoot(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `mcsa-config-it-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Mounts (or updates, by an atomic `..data` swap) import `importName` under `root` with the
 * files of the controller's Secret for a cluster2 token: `config` is SPEC §6's kubeconfig (one
 * cluster/user/context named after the import, remote namespace, CA inline, user `tokenFile` at
 * the pod path `/var/run/secrets/admiralty.io/serviceaccountimports/<import>/token`).
 */
export async function mountRemoteImport(root: string, importName: string, namespace: string, token: string): Promise<void> {
  const c = clusterInfo(REMOTE);
  const secret = buildImportSecret({
    importName,
    importNamespace: 'local',
    importUid: 'uid',
    credential: { server: c.server, caPem: c.caPem, token, namespace },
    issued: new Date(),
    expiration: new Date(Date.now() + 3600_000),
    remoteUid: 'remote-uid',
    fingerprint: 'fp',
  });
  const files = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  await writeSecretVolume(path.join(root, importName), files);
}
