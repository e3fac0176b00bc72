import { describe, expect, it } from '@jest/globals';
import { UsageError } from '../../../src/bootstrap/errors.js';
import {
  IMPORTER_CLUSTER_ROLE,
  labelValueFor,
  MANAGED_BY_LABEL,
  sourceSelector,
  validateClusterName,
} from '../../../src/bootstrap/names.js';
import {
  bootstrapPlan,
  clusterRoleStillUsed,
  describePlan,
  namespaceBlockers,
  refOf,
  staleBindings,
  unbootstrapPlan,
} from '../../../src/bootstrap/plan.js';
import { INSTALL_NAMESPACE } from '../../../src/constants.js';
import { isDns1123Subdomain, secretNameForImport } from '../../../src/naming.js';

/** The label naming the target cluster on what kubemcsa writes to a source (src/bootstrap/names.ts). */
const TARGET_LABEL = 'multicluster.admiralty.io/bootstrap-target';

const kindsAndNames = (ms: Array<{ kind: string; metadata: { name: string; namespace?: string } }>) =>
  ms.map((m) => `${m.kind} ${m.metadata.namespace ?? ''}/${m.metadata.name}`);

describe('bootstrap plan', () => {
  const plan = bootstrapPlan({ targetName: 'cluster1', sourceName: 'cluster2' });

  it('creates, cluster-wide, exactly the importer objects in the source', () => {
    expect(plan.sourceNamespace.metadata.name).toBe(INSTALL_NAMESPACE);
    expect(kindsAndNames(plan.source)).toEqual([
      'ValidatingAdmissionPolicy /multicluster-service-account-importers',
      'ValidatingAdmissionPolicyBinding /multicluster-service-account-importers',
      `ClusterRole /${IMPORTER_CLUSTER_ROLE}`,
      `ServiceAccount ${INSTALL_NAMESPACE}/cluster1`,
      'ClusterRoleBinding /multicluster-service-account-importer-cluster1',
      `Role ${INSTALL_NAMESPACE}/multicluster-service-account-importer-self-cluster1`,
      `RoleBinding ${INSTALL_NAMESPACE}/multicluster-service-account-importer-self-cluster1`,
    ]);
  });

  it('grants only get/list/watch serviceaccounts: no token rights but its own, no Secret verbs', () => {
    const role = plan.source.find((m) => m.kind === 'ClusterRole')!;
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] }]);
    // The only token right anywhere in the plan is the self Role's, for the importer itself.
    const tokenRules = plan.source.flatMap((m) => (m.rules as Array<{ resources: string[]; resourceNames?: string[] }> | undefined) ?? []).filter((r) => r.resources.includes('serviceaccounts/token'));
    expect(tokenRules).toEqual([expect.objectContaining({ resourceNames: ['cluster1'] })]);
    const self = plan.source.find((m) => m.kind === 'Role')!;
    expect(self.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['cluster1'], verbs: ['create'] },
      { apiGroups: [''], resources: ['serviceaccounts'], resourceNames: ['cluster1'], verbs: ['get'] },
    ]);
  });

  it('binds the importer ServiceAccount of the install namespace', () => {
    for (const b of plan.source.filter((m) => m.kind.endsWith('Binding') && m.apiVersion.startsWith('rbac.'))) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'cluster1', namespace: INSTALL_NAMESPACE }]);
    }
  });

  it('labels every source object for the target, shared ones as managed only', () => {
    for (const m of [plan.sourceNamespace, ...plan.source]) expect(m.metadata.labels?.[MANAGED_BY_LABEL]).toBe('kubemcsa');
    const shared = (x: { kind: string }) => x.kind === 'ClusterRole' || x.kind.startsWith('ValidatingAdmissionPolicy');
    for (const m of plan.source.filter((x) => !shared(x))) expect(m.metadata.labels?.[TARGET_LABEL]).toBe('cluster1');
    for (const m of plan.source.filter(shared)) expect(m.metadata.labels?.[TARGET_LABEL]).toBeUndefined();
    // Grant objects carry the target label too: the prune never touches them.
    expect(plan.pruneSelector).toBe(`${sourceSelector('cluster1')},!multicluster.admiralty.io/grant`);
  });

  it('registers the source in the target: import named after the source, importer named after the target', () => {
    expect(plan.registration.metadata).toMatchObject({ name: 'cluster2', namespace: INSTALL_NAMESPACE });
    expect(plan.registration.spec).toEqual({ clusterName: 'cluster2', namespace: INSTALL_NAMESPACE, name: 'cluster1', expirationSeconds: 86_400 });
    expect(plan.expirationSeconds).toBe(86_400);
    const short = bootstrapPlan({ targetName: 'cluster1', sourceName: 'cluster2', registrationSeconds: 1200 });
    expect(short.registration.spec.expirationSeconds).toBe(1200);
    expect(describePlan(short, 'cluster2', 'cluster1').join('\n')).toMatch(/expirationSeconds=1200\)[\s\S]*TokenRequest, 1200 s/);
    expect(plan.secret).toEqual({ name: secretNameForImport('cluster2'), namespace: INSTALL_NAMESPACE });
    expect(plan.importer).toEqual({ name: 'cluster1', namespace: INSTALL_NAMESPACE });
  });

  it('with --source-namespaces, binds per namespace (deduplicated, plus the install namespace) and never cluster-wide', () => {
    const p = bootstrapPlan({ targetName: 'cluster1', sourceName: 'cluster2', sourceNamespaces: ['a', 'b', 'a'] });
    expect(p.source.filter((m) => m.kind === 'ClusterRoleBinding')).toEqual([]);
    expect(kindsAndNames(p.source.filter((m) => m.kind === 'RoleBinding'))).toEqual([
      'RoleBinding a/multicluster-service-account-importer-cluster1',
      'RoleBinding b/multicluster-service-account-importer-cluster1',
      // The controller watches the importer's own ServiceAccount (its grants) there.
      `RoleBinding ${INSTALL_NAMESPACE}/multicluster-service-account-importer-cluster1`,
      `RoleBinding ${INSTALL_NAMESPACE}/multicluster-service-account-importer-self-cluster1`,
    ]);
    // The self binding never collides with a per-namespace binding in the install namespace.
    const inInstall = bootstrapPlan({ targetName: 't', sourceName: 's', sourceNamespaces: [INSTALL_NAMESPACE] });
    const names = inInstall.source.filter((m) => m.kind === 'RoleBinding').map((m) => m.metadata.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('finds stale bindings when the scope changes', () => {
    const scoped = bootstrapPlan({ targetName: 'cluster1', sourceName: 'cluster2', sourceNamespaces: ['a'] });
    const found = [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', name: 'multicluster-service-account-importer-cluster1' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: 'multicluster-service-account-importer-cluster1', namespace: 'a' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: 'multicluster-service-account-importer-cluster1', namespace: 'old' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: 'multicluster-service-account-importer-self-cluster1', namespace: INSTALL_NAMESPACE },
    ];
    expect(staleBindings(scoped, found).map((r) => `${r.kind} ${r.namespace ?? ''}`)).toEqual(['ClusterRoleBinding ', 'RoleBinding old']);
    expect(staleBindings(plan, found).map((r) => `${r.kind} ${r.namespace ?? ''}`)).toEqual(['RoleBinding a', 'RoleBinding old']);
    expect(staleBindings(plan, plan.source.map(refOf))).toEqual([]);
  });

  it('describes every step for --dry-run', () => {
    const lines = describePlan(plan, 'cluster2', 'cluster1');
    expect(lines.length).toBe(plan.source.length + 6);
    expect(lines.filter((l) => l.startsWith('[source cluster2]')).length).toBe(plan.source.length + 3);
    expect(lines.join('\n')).toContain(`Secret ${INSTALL_NAMESPACE}/${secretNameForImport('cluster2')}`);
  });
});

describe('unbootstrap plan', () => {
  it('removes the registration and its Secret in the target, the importer objects in the source', () => {
    const p = unbootstrapPlan({ targetName: 'cluster1', sourceName: 'cluster2' });
    expect(p.target.map((r) => `${r.kind} ${r.name}`)).toEqual(['ServiceAccountImport cluster2', `Secret ${secretNameForImport('cluster2')}`]);
    expect(p.source.map((r) => r.kind)).toEqual(['ClusterRoleBinding', 'RoleBinding', 'Role', 'ServiceAccount']);
    expect(p.source.at(-1)).toMatchObject({ kind: 'ServiceAccount', name: 'cluster1', namespace: INSTALL_NAMESPACE });
    expect(p.sourceSelector).toBe(sourceSelector('cluster1'));
  });

  it('keeps the ClusterRole while another binding refers to it', () => {
    const other = { kind: 'ClusterRoleBinding', name: 'multicluster-service-account-importer-cluster3', roleRef: { kind: 'ClusterRole', name: IMPORTER_CLUSTER_ROLE } };
    const self = { kind: 'RoleBinding', name: 'x', namespace: INSTALL_NAMESPACE, roleRef: { kind: 'Role', name: 'x' } };
    expect(clusterRoleStillUsed([other, self])).toEqual([other]);
    expect(clusterRoleStillUsed([self])).toEqual([]);
  });

  it('deletes the namespace only when nothing but built-ins remains', () => {
    expect(namespaceBlockers([{ kind: 'ServiceAccount', name: 'default' }, { kind: 'ConfigMap', name: 'kube-root-ca.crt' }])).toEqual([]);
    expect(namespaceBlockers([{ kind: 'ServiceAccount', name: 'cluster3' }, { kind: 'ServiceAccount', name: 'default' }])).toEqual([
      { kind: 'ServiceAccount', name: 'cluster3' },
    ]);
    expect(namespaceBlockers([{ kind: 'Lease', name: 'leader' }])).toHaveLength(1);
  });
});

describe('cluster names', () => {
  it('accepts DNS-1123 subdomains', () => {
    expect(validateClusterName('cluster-1.example', 'target', 'flag')).toBe('cluster-1.example');
  });

  it('rejects GKE-style kubeconfig cluster names, naming the override flag', () => {
    expect(() => validateClusterName('gke_proj_zone_name', 'source', { context: 'gke' })).toThrow(UsageError);
    expect(() => validateClusterName('gke_proj_zone_name', 'source', { context: 'gke' })).toThrow(/"gke_proj_zone_name".*--source-name/);
    expect(() => validateClusterName('Cluster1', 'target', 'flag')).toThrow(/--target-name/);
  });

  it('derives label values that fit (≤ 63) and stay distinct for long names', () => {
    const long1 = `${'a'.repeat(80)}.one`;
    const long2 = `${'a'.repeat(80)}.two`;
    expect(labelValueFor('cluster1')).toBe('cluster1');
    expect(labelValueFor(long1).length).toBeLessThanOrEqual(63);
    expect(labelValueFor(long1)).not.toBe(labelValueFor(long2));
    expect(isDns1123Subdomain(labelValueFor(long1))).toBe(true);
  });
});

describe('pre-flight permissions', () => {
  it('asks, per side, for create and patch of every applied kind, token minting and reads', async () => {
    const { describePermission, sourcePermissions, targetPermissions } = await import('../../../src/bootstrap/permissions.js');
    const wide = sourcePermissions(bootstrapPlan({ targetName: 't', sourceName: 's' })).map(describePermission);
    expect(wide).toEqual(
      expect.arrayContaining([
        'get namespaces',
        'create clusterroles.rbac.authorization.k8s.io',
        'patch clusterrolebindings.rbac.authorization.k8s.io',
        `create serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
        `create serviceaccounts/token in namespace ${INSTALL_NAMESPACE}`,
      ]),
    );
    const scoped = sourcePermissions(bootstrapPlan({ targetName: 't', sourceName: 's', sourceNamespaces: ['a'] })).map(describePermission);
    expect(scoped).toContain('patch rolebindings.rbac.authorization.k8s.io in namespace a');
    expect(scoped).toContain(`patch rolebindings.rbac.authorization.k8s.io in namespace ${INSTALL_NAMESPACE}`);
    expect(scoped.some((p) => p.includes('clusterrolebindings'))).toBe(false);
    expect(targetPermissions(bootstrapPlan({ targetName: 't', sourceName: 's' })).map(describePermission)).toEqual(
      expect.arrayContaining([`patch serviceaccountimports.multicluster.admiralty.io in namespace ${INSTALL_NAMESPACE}`, `create secrets in namespace ${INSTALL_NAMESPACE}`]),
    );
  });

  it('unbootstrap asks to read and delete what it removes, and to delete each binding it found where it lives', async () => {
    const { describePermission, unbootstrapPermissions } = await import('../../../src/bootstrap/permissions.js');
    const plan = unbootstrapPlan({ targetName: 't', sourceName: 's' });
    const found = [{ kind: 'ClusterRoleBinding' }, { kind: 'RoleBinding', namespace: 'team-a' }];
    const { target, source } = unbootstrapPermissions(plan, found);
    expect(target.map(describePermission)).toEqual([
      'get namespaces',
      `get serviceaccountimports.multicluster.admiralty.io in namespace ${INSTALL_NAMESPACE}`,
      `delete serviceaccountimports.multicluster.admiralty.io in namespace ${INSTALL_NAMESPACE}`,
      `get secrets in namespace ${INSTALL_NAMESPACE}`,
      `delete secrets in namespace ${INSTALL_NAMESPACE}`,
    ]);
    const s = source.map(describePermission);
    expect(s).toEqual(
      expect.arrayContaining([
        'delete clusterrolebindings.rbac.authorization.k8s.io',
        'delete rolebindings.rbac.authorization.k8s.io in namespace team-a',
        `delete rolebindings.rbac.authorization.k8s.io in namespace ${INSTALL_NAMESPACE}`,
        `delete roles.rbac.authorization.k8s.io in namespace ${INSTALL_NAMESPACE}`,
        `delete serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
        'delete clusterroles.rbac.authorization.k8s.io',
      ]),
    );
    // Never more than it does: no create, no patch, and the namespaces are not asked for.
    expect(s.concat(target.map(describePermission)).filter((p) => /^(create|patch)|delete namespaces/.test(p))).toEqual([]);
    expect(unbootstrapPermissions(plan, []).source.map(describePermission)).not.toContain('delete clusterrolebindings.rbac.authorization.k8s.io');
    // The target's grant objects found in the source: deleted where they are.
    const grants = unbootstrapPermissions(plan, [], [{ kind: 'Secret', namespace: 'team-b' }, { kind: 'Role', namespace: 'team-b' }, { kind: 'ClusterRoleBinding' }]).source.map(describePermission);
    expect(grants).toEqual(
      expect.arrayContaining(['delete secrets in namespace team-b', 'delete roles.rbac.authorization.k8s.io in namespace team-b', 'delete clusterrolebindings.rbac.authorization.k8s.io']),
    );
  });
});
