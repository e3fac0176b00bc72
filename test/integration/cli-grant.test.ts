// kubemcsa grant / revoke against two real clusters: cluster1 (target) ← cluster2 (source). The
// importer gets token rights only from grants; a revoke stops the tokens minted under the grant.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { GRANT_LABEL, grantAnnotationKey, grantObjectName } from '../../src/consent/grants.js';
import { TOKEN_MINTER_CLUSTER_ROLE } from '../../src/bootstrap/grant.js';
import { secretNameForImport } from '../../src/naming.js';
import { credentialFromSecretData } from '../../src/secret.js';
import { clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { canIList, ensureCrd, errorLine, kubemcsa, tokenKubeConfig } from './cli-support.js';

jest.setTimeout(240_000);

const TARGET = 'cluster1';
const SOURCE = 'cluster2';
const CLUSTER_FLAGS = ['--target-context', TARGET, '--source-context', SOURCE];
const TO = ['--target-name', TARGET, '--source-context', SOURCE];
const IMPORTER = `system:serviceaccount:${INSTALL_NAMESPACE}:${TARGET}`;
const SA_READ = 'serviceaccounts [] [get list watch]';

const kcOf = (c: string) => clusterInfo(c).kubeconfigPath;

/** Every grant object in the source: `Kind namespace/name`, sorted. */
async function grantObjects(): Promise<string[]> {
  const r = await kubectl(kcOf(SOURCE), ['get', 'secrets,roles,rolebindings,clusterrolebindings', '-A', '-l', GRANT_LABEL, '-o', 'json']);
  expect(r.code).toBe(0);
  const items = (JSON.parse(r.stdout) as { items: Array<{ kind: string; metadata: { name: string; namespace?: string } }> }).items;
  return items.map((i) => `${i.kind} ${i.metadata.namespace ?? ''}/${i.metadata.name}`).sort();
}

async function importerAnnotations(): Promise<Record<string, string>> {
  const r = await kubectl(kcOf(SOURCE), ['get', 'sa', '-n', INSTALL_NAMESPACE, TARGET, '-o', 'json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations ?? {};
}

/** The registration's credential in the target: the importer's own token, as the controller uses it. */
async function importerKubeConfig(): Promise<KubeConfig> {
  const r = await kubectl(kcOf(TARGET), ['get', 'secret', '-n', INSTALL_NAMESPACE, secretNameForImport(SOURCE), '-o', 'json']);
  expect(r.code).toBe(0);
  const cred = credentialFromSecretData((JSON.parse(r.stdout) as { data: Record<string, string> }).data)!;
  return tokenKubeConfig(cred.server, cred.caPem, cred.token);
}

/** What the controller does under a grant: TokenRequest as the importer, bound to the anchor Secret. Resolves the HTTP status and the token. */
async function mintAs(kc: KubeConfig, namespace: string, name: string, anchor?: string): Promise<{ status: number; token?: string; message?: string }> {
  try {
    const tr = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600, ...(anchor ? { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: anchor } } : {}) } },
    });
    return { status: 201, token: tr.status!.token };
  } catch (e) {
    const body = (e as { body?: unknown }).body;
    const message = typeof body === 'string' ? ((JSON.parse(body) as { message?: string }).message ?? body) : undefined;
    return { status: (e as { code?: number }).code ?? 0, ...(message !== undefined ? { message } : {}) };
  }
}

/** 201 while the source authenticates `token`, 401 once it does not. */
async function whoamiStatus(token: string): Promise<number> {
  const c = clusterInfo(SOURCE);
  try {
    await tokenKubeConfig(c.server, c.caPem, token).makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    return 201;
  } catch (e) {
    return (e as { code?: number }).code ?? 0;
  }
}

describe('kubemcsa grant and revoke (source cluster2, target cluster1)', () => {
  let team: { name: string; delete: () => Promise<void> };
  let other: { name: string; delete: () => Promise<void> };
  const reader = () => ({ namespace: team.name, serviceAccount: 'reader' });

  beforeAll(async () => {
    await ensureCrd(TARGET);
    await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--wait']);
    team = await createTestNamespace(SOURCE, 'cli-grant');
    other = await createTestNamespace(SOURCE, 'cli-grant-other');
    for (const [ns, sa] of [[team.name, 'reader'], [team.name, 'writer'], [other.name, 'reader']] as const) {
      expect((await kubectl(kcOf(SOURCE), ['create', 'serviceaccount', sa, '-n', ns])).code).toBe(0);
    }
  });

  afterAll(async () => {
    await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--wait']);
    await team.delete();
    await other.delete();
  });

  it('bootstrap gives the importer no token rights but its own, and names the next step', async () => {
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`next: .*kubemcsa grant SERVICEACCOUNT -n NAMESPACE --target-name ${TARGET} --source-context ${SOURCE}`));
    expect(await canIList(kcOf(SOURCE), IMPORTER, team.name)).toEqual([SA_READ]);
    expect(await canIList(kcOf(SOURCE), IMPORTER, INSTALL_NAMESPACE)).toEqual([SA_READ, `serviceaccounts [${TARGET}] [get]`, `serviceaccounts/token [${TARGET}] [create]`]);
    expect((await mintAs(await importerKubeConfig(), team.name, 'reader')).status).toBe(403);
  });

  it('--dry-run runs the pre-flight, prints the plan and changes nothing', async () => {
    const r = await kubemcsa(['grant', 'reader', '-n', team.name, ...TO, '--dry-run']);
    expect(r.code).toBe(0);
    const name = grantObjectName(TARGET, reader());
    expect(r.stdout).toContain(`[source ${SOURCE}] apply Secret ${team.name}/${name}`);
    expect(r.stdout).toContain(`[source ${SOURCE}] apply RoleBinding ${team.name}/${name}`);
    expect(r.stdout).toContain(`annotation ${grantAnnotationKey(reader())}=${team.name}/reader`);
    expect(r.stderr).toContain('dry run: nothing was changed');
    expect(await grantObjects()).toEqual([]);
    expect(await importerAnnotations()).toEqual({});
  });

  it('grant lets the importer mint tokens for the granted ServiceAccount only, bound to the anchor', async () => {
    const r = await kubemcsa(['grant', 'reader', '-n', team.name, ...TO]);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    const name = grantObjectName(TARGET, reader());
    expect(r.stderr).toMatch(new RegExp(`Secret ${team.name}/${name.replace(/\./g, '\\.')}: created`));
    expect(r.stderr).toMatch(/annotation .*: recorded/);
    expect(await grantObjects()).toEqual([`Role ${team.name}/${name}`, `RoleBinding ${team.name}/${name}`, `Secret ${team.name}/${name}`]);
    // The record names the anchor's UID: the controller binds tokens to that very Secret.
    const anchor = await kubectl(kcOf(SOURCE), ['get', 'secret', '-n', team.name, name, '-o', 'jsonpath={.metadata.uid}']);
    expect(anchor.stdout).toMatch(/^[0-9a-f-]{36}$/);
    expect(await importerAnnotations()).toEqual({ [grantAnnotationKey(reader())]: `${team.name}/reader@${anchor.stdout}` });

    expect(await canIList(kcOf(SOURCE), IMPORTER, team.name)).toEqual([SA_READ, `serviceaccounts/token [reader] [create]`]);
    expect(await canIList(kcOf(SOURCE), IMPORTER, other.name)).toEqual([SA_READ]);
    expect(await canIList(kcOf(SOURCE), IMPORTER, 'default')).toEqual([SA_READ]);
    const wide = await kubectl(kcOf(SOURCE), ['auth', 'can-i', 'create', 'serviceaccounts', '--subresource', 'token', '--as', IMPORTER, '--all-namespaces']);
    expect(wide.stdout.trim()).toBe('no');

    const kc = await importerKubeConfig();
    expect((await mintAs(kc, team.name, 'reader', name)).status).toBe(201);
    expect((await mintAs(kc, team.name, 'writer', name)).status).toBe(403);
    expect((await mintAs(kc, other.name, 'reader')).status).toBe(403);
    // The source's admission policy: even with the grant's RBAC, an importer (or whoever holds
    // its token) gets no unbound token, and none bound to another Secret than the grant's anchor.
    const unbound = await mintAs(kc, team.name, 'reader');
    expect(unbound).toEqual({ status: 403, message: expect.stringMatching(/multicluster-service-account-importers.*must be bound to the anchor Secret of its grant/) });
    await kubectl(kcOf(SOURCE), ['create', 'secret', 'generic', 'decoy', '-n', team.name]);
    expect(await mintAs(kc, team.name, 'reader', 'decoy')).toEqual({ status: 403, message: expect.stringMatching(/must be bound to the anchor Secret of its grant/) });
  });

  it('a second grant changes nothing', async () => {
    const before = await kubectl(kcOf(SOURCE), ['get', 'secrets,roles,rolebindings', '-n', team.name, '-l', GRANT_LABEL, '-o', 'jsonpath={.items[*].metadata.resourceVersion}']);
    const saBefore = await kubectl(kcOf(SOURCE), ['get', 'sa', '-n', INSTALL_NAMESPACE, TARGET, '-o', 'jsonpath={.metadata.resourceVersion}']);
    const r = await kubemcsa(['grant', 'reader', '-n', team.name, ...TO]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/: (created|configured|recorded)$/m);
    expect(r.stderr.match(/: unchanged$/gm)).toHaveLength(4);
    const after = await kubectl(kcOf(SOURCE), ['get', 'secrets,roles,rolebindings', '-n', team.name, '-l', GRANT_LABEL, '-o', 'jsonpath={.items[*].metadata.resourceVersion}']);
    expect(after.stdout).toBe(before.stdout);
    expect((await kubectl(kcOf(SOURCE), ['get', 'sa', '-n', INSTALL_NAMESPACE, TARGET, '-o', 'jsonpath={.metadata.resourceVersion}'])).stdout).toBe(saBefore.stdout);
  });

  it('kubemcsa status on the source lists the grant', async () => {
    const r = await kubemcsa(['status', '--context', SOURCE, '-o', 'json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { grants: unknown[] }).grants).toEqual([{ target: TARGET, namespace: team.name, serviceAccount: 'reader', scope: 'serviceaccount' }]);
    const table = await kubemcsa(['status', '--context', SOURCE]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TARGET +NAMESPACE +SERVICEACCOUNT +SCOPE$/m);
    expect(table.stdout).toMatch(new RegExp(`^${TARGET} +${team.name} +reader +serviceaccount$`, 'm'));
  });

  it.each([
    [['reader', '-n', 'kube-system'], /namespace kube-system is never granted/],
    [['--all-service-accounts', '-n', INSTALL_NAMESPACE], /namespace multicluster-service-account is never granted/],
    [['reader', '--all-service-accounts', '-n', 'default'], /exactly one of/],
  ])('grant %j is refused as a usage error (exit 2), changing nothing', async (args, message) => {
    const r = await kubemcsa(['grant', ...args, ...TO]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(message);
    expect(await grantObjects()).toHaveLength(3);
  });

  it('grant fails (exit 1) naming what is missing: the ServiceAccount, or the bootstrap', async () => {
    const missing = await kubemcsa(['grant', 'nobody', '-n', team.name, ...TO]);
    expect(missing.code).toBe(1);
    expect(errorLine(missing)).toMatch(new RegExp(`ServiceAccount ${team.name}/nobody does not exist in source cluster ${SOURCE} \\(context ${SOURCE}\\)`));
    const unknown = await kubemcsa(['grant', 'reader', '-n', team.name, '--target-name', 'not-bootstrapped', '--source-context', SOURCE]);
    expect(unknown.code).toBe(1);
    expect(errorLine(unknown)).toMatch(/ServiceAccount multicluster-service-account\/not-bootstrapped does not exist .*run kubemcsa bootstrap first/);
    expect(await grantObjects()).toHaveLength(3);
  });

  it('revoke removes the record, the anchor, the binding and the role, and the tokens minted under the grant stop working', async () => {
    const name = grantObjectName(TARGET, reader());
    const minted = await mintAs(await importerKubeConfig(), team.name, 'reader', name);
    expect(minted.status).toBe(201);
    expect(await whoamiStatus(minted.token!)).toBe(201);
    const dry = await kubemcsa(['revoke', 'reader', '-n', team.name, ...TO, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/delete Secret .* \(tokens minted under the grant stop authenticating\)/);
    expect(await grantObjects()).toHaveLength(3);

    const r = await kubemcsa(['revoke', 'reader', '-n', team.name, ...TO]);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/annotation .*: removed/);
    expect(r.stderr.match(/: deleted$/gm)).toHaveLength(3);
    expect(await grantObjects()).toEqual([]);
    expect(await importerAnnotations()).toEqual({});
    expect(await canIList(kcOf(SOURCE), IMPORTER, team.name)).toEqual([SA_READ]);
    // Bound to the deleted anchor: refused once the source's 10 s token-authentication cache lets go.
    await waitFor('the source to refuse the token minted under the revoked grant', async () => (await whoamiStatus(minted.token!)) === 401, 30_000, 500);
    expect(r.stdout + r.stderr).not.toContain(minted.token!);

    const again = await kubemcsa(['revoke', 'reader', '-n', team.name, ...TO]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/: (deleted|removed)$/m);
    expect(again.stderr.match(/: absent$/gm)).toHaveLength(4);
  });

  it('namespace and cluster-wide grants; unbootstrap removes every grant object', async () => {
    const ns = await kubemcsa(['grant', '--all-service-accounts', '-n', other.name, ...TO]);
    expect(ns.code).toBe(0);
    expect(await canIList(kcOf(SOURCE), IMPORTER, other.name)).toEqual([SA_READ, 'serviceaccounts/token [] [create]']);
    const wide = await kubemcsa(['grant', '--cluster-wide', ...TO]);
    expect(wide.code).toBe(0);
    expect(wide.stderr).toMatch(/^WARNING: a cluster-wide grant lets cluster cluster1 obtain tokens for every ServiceAccount .*cannot be revoked before they expire/m);
    expect(wide.stderr).toMatch(new RegExp(`ClusterRole ${TOKEN_MINTER_CLUSTER_ROLE}: created`));
    expect(await grantObjects()).toHaveLength(4);
    const status = JSON.parse((await kubemcsa(['status', '--context', SOURCE, '-o', 'json'])).stdout) as { grants: Array<{ scope: string }> };
    expect(status.grants.map((g) => g.scope).sort()).toEqual(['cluster', 'namespace']);
    // Cluster-wide means unbound tokens anywhere but where the source's admission policy never
    // lets an importer in, whatever RBAC says: kube-system, and the install namespace but its own.
    const kc = await importerKubeConfig();
    expect((await mintAs(kc, team.name, 'reader')).status).toBe(201);
    expect(await mintAs(kc, 'kube-system', 'default')).toEqual({ status: 403, message: expect.stringMatching(/never obtain tokens of kube-system ServiceAccounts/) });
    expect(await mintAs(kc, INSTALL_NAMESPACE, 'default')).toEqual({ status: 403, message: expect.stringMatching(/obtains no token in multicluster-service-account but its own/) });
    expect((await mintAs(kc, INSTALL_NAMESPACE, TARGET)).status).toBe(201);

    const r = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--wait']);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    // The anchor first (found from the grant Role of the same name), then the bindings and the Role.
    const anchor = grantObjectName(TARGET, { namespace: other.name, serviceAccount: '*' });
    expect(r.stderr).toMatch(new RegExp(`Secret ${other.name}/${anchor.replace(/\./g, '\\.')}: deleted\n(.*: deleted \\(grant\\)\n){3}`));
    expect(await grantObjects()).toEqual([]);
    expect((await kubectl(kcOf(SOURCE), ['get', 'clusterrole', TOKEN_MINTER_CLUSTER_ROLE, '--ignore-not-found', '-o', 'name'])).stdout.trim()).toBe('');
  });
});
