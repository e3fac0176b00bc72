// The project's own identities confined by the ValidatingAdmissionPolicies of install.yaml
// (manifests/policies), on a real API server: impersonating the controller's and the webhook's
// ServiceAccounts (with the RBAC of their manifests, so RBAC allows each request and the policy is
// what refuses it), every write the policies forbid is denied, naming the policy, and the writes
// the two components do for their job still go through.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
} from '@kubernetes/client-node';
import { API_GROUP_VERSION, CONTROLLER_FIELD_MANAGER, IMPORT_KIND, IMPORT_LABEL, IMPORT_PLURAL, API_GROUP, API_VERSION, INSTALL_NAMESPACE } from '../../src/constants.js';
import { adminKubeConfig, createTestNamespace, kubectl, testClusters, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { apis, installControllerPrerequisites } from './controller-support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLUSTER = 'cluster1';
const CONTROLLER = `system:serviceaccount:${INSTALL_NAMESPACE}:multicluster-service-account-controller`;
const WEBHOOK = `system:serviceaccount:${INSTALL_NAMESPACE}:multicluster-service-account-webhook`;
const CONTROLLER_POLICY = 'multicluster-service-account-controller-secrets';
const WEBHOOK_POLICY = 'multicluster-service-account-webhook-configuration';
const MWC = 'multicluster-service-account-webhook';

/** An admin KubeConfig whose requests are made as `user` (Impersonate-User). */
function impersonating(user: string): KubeConfig {
  const admin = adminKubeConfig(CLUSTER);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: admin.clusters,
    contexts: admin.contexts,
    currentContext: admin.currentContext,
    users: admin.users.map((u) => ({ ...u, impersonateUser: user })),
  });
  return kc;
}

async function applyManifest(file: string): Promise<void> {
  const r = await kubectl(testClusters().kubeconfigPath, ['--context', CLUSTER, 'apply', '--server-side', '--force-conflicts', '-f', path.join(ROOT, file)]);
  if (r.code !== 0) throw new Error(`kubectl apply -f ${file} failed: ${r.stderr}`);
}

async function deleteManifest(file: string): Promise<void> {
  await kubectl(testClusters().kubeconfigPath, ['--context', CLUSTER, 'delete', '--ignore-not-found', '-f', path.join(ROOT, file)]);
}

/** The API server's Status message of a refused call. */
function statusMessage(e: ApiException<unknown>): string {
  const body = e.body as unknown;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return (body as { message?: string } | undefined)?.message ?? '';
}

/** The refusal of `write`: its HTTP status and the API server's message. Fails if the write succeeds. */
async function refusal(write: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await write();
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    return { code: e.code, message: statusMessage(e) };
  }
  throw new Error('the write was allowed');
}

/**
 * Waits until the API server has loaded `policy`: `forbidden` (a write the policy refuses) is
 * refused by it. A write that got through before is undone with what `forbidden` returned.
 */
async function policyInEffect(policy: string, forbidden: () => Promise<() => Promise<unknown>>): Promise<void> {
  await waitFor(`policy ${policy} to be in effect`, async () => {
    try {
      await (await forbidden())();
      return false;
    } catch (e) {
      return e instanceof ApiException && policyDenial(policy).test(statusMessage(e));
    }
  }, 30_000, 200);
}

/** `kubectl auth can-i …` for `user`: RBAC allows the request (so a refusal is the policy's). */
async function rbacAllows(user: string, args: string[]): Promise<boolean> {
  const r = await kubectl(testClusters().kubeconfigPath, ['--context', CLUSTER, 'auth', 'can-i', ...args, '--as', user]);
  return r.stdout.trim() === 'yes';
}

const policyDenial = (policy: string) => new RegExp(`ValidatingAdmissionPolicy '${policy}' with binding '${policy}' denied request`);

let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let owner: { apiVersion: string; kind: string; name: string; uid: string; controller: boolean; blockOwnerDeletion: boolean };
let previousMwc: V1MutatingWebhookConfiguration | undefined;
const adminCore = () => adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api);
const adminAdmission = () => adminKubeConfig(CLUSTER).makeApiClient(AdmissionregistrationV1Api);

beforeAll(async () => {
  await installControllerPrerequisites(CLUSTER);
  await applyManifest('manifests/webhook/rbac.yaml');
  previousMwc = await adminAdmission().readMutatingWebhookConfiguration({ name: MWC }).catch(() => undefined);
  await applyManifest('manifests/webhook/mutatingwebhookconfiguration.yaml');
  await applyManifest('manifests/policies/controller-secrets.yaml');
  await applyManifest('manifests/policies/webhook-configuration.yaml');
  ns = await createTestNamespace(CLUSTER, 'confine');
  const name = uniqueName('owner');
  const sai = (await apis(CLUSTER).custom.createNamespacedCustomObject({
    group: API_GROUP, version: API_VERSION, namespace: ns.name, plural: IMPORT_PLURAL,
    body: { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, metadata: { name }, spec: { clusterName: 'nowhere', namespace: 'default', name: 'nobody' } },
  })) as { metadata: { uid: string } };
  owner = { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name, uid: sai.metadata.uid, controller: true, blockOwnerDeletion: true };
}, 120_000);

afterAll(async () => {
  await ns?.delete();
  await deleteManifest('manifests/policies/controller-secrets.yaml');
  await deleteManifest('manifests/policies/webhook-configuration.yaml');
  if (previousMwc) {
    const { metadata, ...rest } = previousMwc;
    await adminAdmission().replaceMutatingWebhookConfiguration({ name: MWC, body: { ...rest, metadata: { ...metadata, resourceVersion: undefined, managedFields: undefined } } }).catch(() => undefined);
  } else await deleteManifest('manifests/webhook/mutatingwebhookconfiguration.yaml');
}, 120_000);

describe('the controller ServiceAccount', () => {
  const core = () => impersonating(CONTROLLER).makeApiClient(CoreV1Api);
  const secret = (name: string, extra: Partial<V1Secret> & { labels?: Record<string, string>; owners?: (typeof owner)[] } = {}): V1Secret => {
    const { labels, owners, ...rest } = extra;
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name, namespace: ns.name, ...(labels ? { labels } : {}), ...(owners ? { ownerReferences: owners } : {}) },
      data: { token: Buffer.from('not-a-token').toString('base64') },
      ...rest,
    };
  };
  const importSecret = (name: string) => secret(name, { labels: { [IMPORT_LABEL]: owner.name }, owners: [owner] });
  /** A write the way the controller writes: server-side apply under its field manager. */
  const apply = (body: V1Secret) =>
    core().patchNamespacedSecret(
      { namespace: ns.name, name: body.metadata!.name!, body, fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );

  beforeAll(async () => {
    // The policy takes effect once the API server has loaded it: wait until a forbidden write is refused by it.
    await policyInEffect(CONTROLLER_POLICY, async () => {
      const name = uniqueName('probe');
      await core().createNamespacedSecret({ namespace: ns.name, body: secret(name) });
      return () => adminCore().deleteNamespacedSecret({ namespace: ns.name, name });
    });
  }, 60_000);

  it('may write Secrets at all as far as RBAC goes (so the refusals below are the policy’s)', async () => {
    expect(await rbacAllows(CONTROLLER, ['create', 'secrets', '-n', ns.name])).toBe(true);
    expect(await rbacAllows(CONTROLLER, ['patch', 'secrets', '-n', ns.name])).toBe(true);
  });

  it.each([
    ['without the import label', () => secret(uniqueName('nolabel'), { owners: [owner] })],
    ['without an owner reference to a ServiceAccountImport', () => secret(uniqueName('noowner'), { labels: { [IMPORT_LABEL]: owner.name } })],
    ['owned by something other than a ServiceAccountImport', () => secret(uniqueName('otherowner'), { labels: { [IMPORT_LABEL]: owner.name }, owners: [{ ...owner, apiVersion: 'v1', kind: 'ConfigMap' }] })],
    [
      'of type kubernetes.io/service-account-token, even labelled and owned',
      () => {
        const s = importSecret(uniqueName('satoken'));
        return { ...s, type: 'kubernetes.io/service-account-token', metadata: { ...s.metadata, annotations: { 'kubernetes.io/service-account.name': 'default' } }, data: {} };
      },
    ],
  ])('is denied creating a Secret %s (create and server-side apply)', async (_what, body) => {
    for (const write of [(b: V1Secret) => core().createNamespacedSecret({ namespace: ns.name, body: b }), apply]) {
      const b = body();
      const denied = await refusal(() => write(b));
      expect(denied.code).toBe(403);
      expect(denied.message).toMatch(policyDenial(CONTROLLER_POLICY));
      expect(await adminCore().readNamespacedSecret({ namespace: ns.name, name: b.metadata!.name! }).catch(() => undefined)).toBeUndefined();
    }
  });

  it('is denied taking over an existing Secret by labelling and owning it', async () => {
    const name = uniqueName('someone-elses');
    await adminCore().createNamespacedSecret({ namespace: ns.name, body: secret(name, { data: { password: Buffer.from('hunter2').toString('base64') } }) });
    const denied = await refusal(() => apply(importSecret(name)));
    expect(denied.code).toBe(403);
    expect(denied.message).toMatch(policyDenial(CONTROLLER_POLICY));
    const after = await adminCore().readNamespacedSecret({ namespace: ns.name, name });
    expect(after.metadata?.labels).toBeUndefined();
    expect(Object.keys(after.data ?? {})).toEqual(['password']);
  });

  it('is denied stripping the label or the owner from an import Secret', async () => {
    const name = uniqueName('import');
    await apply(importSecret(name));
    for (const body of [secret(name, { owners: [owner] }), secret(name, { labels: { [IMPORT_LABEL]: owner.name } })]) {
      const denied = await refusal(() => apply(body));
      expect(denied.code).toBe(403);
      expect(denied.message).toMatch(policyDenial(CONTROLLER_POLICY));
    }
  });

  it('still creates and updates an import Secret by server-side apply, and other users are not affected', async () => {
    const name = uniqueName('import');
    const created = await apply(importSecret(name));
    expect(created.metadata?.labels?.[IMPORT_LABEL]).toBe(owner.name);
    const updated = await apply({ ...importSecret(name), data: { token: Buffer.from('another').toString('base64') } });
    expect(updated.metadata?.resourceVersion).not.toBe(created.metadata?.resourceVersion);
    // The admin (any user but the controller) writes unlabelled Secrets as before.
    const plain = uniqueName('plain');
    await adminCore().createNamespacedSecret({ namespace: ns.name, body: secret(plain) });
    await adminCore().deleteNamespacedSecret({ namespace: ns.name, name: plain });
  });
});

describe('the webhook ServiceAccount', () => {
  const admission = () => impersonating(WEBHOOK).makeApiClient(AdmissionregistrationV1Api);
  const patchAs = (api: AdmissionregistrationV1Api, ops: object[]) => api.patchMutatingWebhookConfiguration({ name: MWC, body: ops }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
  const jsonPatch = (ops: object[]) => patchAs(admission(), ops);
  const adminJsonPatch = (ops: object[]) => patchAs(adminAdmission(), ops);
  const bundle = (s: string) => Buffer.from(`-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`).toString('base64');

  beforeAll(async () => {
    await policyInEffect(WEBHOOK_POLICY, async () => {
      await jsonPatch([{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 6 }]);
      return () => adminJsonPatch([{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 5 }]);
    });
  }, 60_000);

  it('may patch its webhook configuration as far as RBAC goes (so the refusals below are the policy’s)', async () => {
    expect(await rbacAllows(WEBHOOK, ['patch', `mutatingwebhookconfigurations/${MWC}`])).toBe(true);
  });

  it.each([
    ['its failurePolicy', [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }]],
    ['its timeout', [{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 10 }]],
    ['its rules', [{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE', 'UPDATE'] }]],
    ['its namespace selector', [{ op: 'replace', path: '/webhooks/0/namespaceSelector', value: {} }]],
    ['its object selector', [{ op: 'replace', path: '/webhooks/0/objectSelector', value: { matchLabels: { nobody: 'matches' } } }]],
    ['its client config (where pods are sent)', [{ op: 'replace', path: '/webhooks/0/clientConfig/service/name', value: 'elsewhere' }]],
    ['its client config (a URL instead of the Service)', [{ op: 'remove', path: '/webhooks/0/clientConfig/service' }, { op: 'add', path: '/webhooks/0/clientConfig/url', value: 'https://attacker.example/mutate' }]],
    ['its reinvocation policy', [{ op: 'replace', path: '/webhooks/0/reinvocationPolicy', value: 'Never' }]],
    ['its webhooks (removing one)', [{ op: 'remove', path: '/webhooks/0' }]],
    ['its labels', [{ op: 'add', path: '/metadata/labels/extra', value: 'x' }]],
    ['its caBundle together with anything else', [{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: bundle('AAAA') }, { op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }]],
  ])('is denied changing %s', async (_what, ops) => {
    const before = await adminAdmission().readMutatingWebhookConfiguration({ name: MWC });
    const denied = await refusal(() => jsonPatch(ops));
    expect(denied.code).toBe(403);
    expect(denied.message).toMatch(policyDenial(WEBHOOK_POLICY));
    const after = await adminAdmission().readMutatingWebhookConfiguration({ name: MWC });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  });

  it('still publishes a new caBundle, and the admin still changes anything', async () => {
    const patched = await jsonPatch([{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: bundle('BBBB') }]);
    expect(patched.webhooks?.[0]?.clientConfig.caBundle).toBe(bundle('BBBB'));
    const admin = await adminJsonPatch([{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 7 }]);
    expect(admin.webhooks?.[0]?.timeoutSeconds).toBe(7);
  });
});
