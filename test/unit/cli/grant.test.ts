import { describe, expect, it } from '@jest/globals';
import { UsageError } from '../../../src/bootstrap/errors.js';
import {
  anchorsOfRoles,
  isGrantObject,
  checkGrantable,
  clusterWideWarning,
  describeGrantPlan,
  describeRevokePlan,
  grantObjectsSelector,
  grantPermissions,
  grantPlan,
  revokePermissions,
  TOKEN_MINTER_CLUSTER_ROLE,
} from '../../../src/bootstrap/grant.js';
import { MANAGED_BY_LABEL, sourceSelector } from '../../../src/bootstrap/names.js';
import { describePermission } from '../../../src/bootstrap/permissions.js';
import { INSTALL_NAMESPACE } from '../../../src/constants.js';
import { refOf } from '../../../src/bootstrap/plan.js';
import { anchorFor, GRANT_LABEL, grantAnnotationKey, grantObjectName, parseGrants } from '../../../src/consent/grants.js';

/** The label naming the target cluster on what kubemcsa writes to a source (src/bootstrap/names.ts). */
const TARGET_LABEL = 'multicluster.admiralty.io/bootstrap-target';

const sa = { namespace: 'team-a', serviceAccount: 'pod-lister' };
const ns = { namespace: 'team-a', serviceAccount: '*' };
const wide = { namespace: '*', serviceAccount: '*' };
const importer = [{ kind: 'ServiceAccount', name: 'cluster1', namespace: INSTALL_NAMESPACE }];
const kindsAndNames = (ms: Array<{ kind: string; metadata: { name: string; namespace?: string } }>) => ms.map((m) => `${m.kind} ${m.metadata.namespace ?? ''}/${m.metadata.name}`);

describe('grant plan: one ServiceAccount', () => {
  const plan = grantPlan('cluster1', sa);
  const name = grantObjectName('cluster1', sa);

  it('applies the anchor Secret, then the Role, then the RoleBinding, all named after the grant in its namespace', () => {
    expect(kindsAndNames(plan.objects)).toEqual([`Secret team-a/${name}`, `Role team-a/${name}`, `RoleBinding team-a/${name}`]);
    expect(refOf(plan.objects[0]!)).toEqual({ apiVersion: 'v1', kind: 'Secret', ...anchorFor('cluster1', sa)! });
  });

  it('the anchor is an empty Opaque Secret', () => {
    const anchor = plan.objects[0]!;
    expect(anchor.type).toBe('Opaque');
    expect(anchor).not.toHaveProperty('data');
    expect(anchor).not.toHaveProperty('stringData');
  });

  it('lets the importer mint tokens for that ServiceAccount only, and read ServiceAccounts', () => {
    expect(plan.objects[1]!.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['pod-lister'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] },
    ]);
    expect(plan.objects[2]!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name });
    expect(plan.objects[2]!.subjects).toEqual(importer);
  });

  it('labels every object for the target and the grant, so unbootstrap finds them and bootstrap never prunes them', () => {
    for (const m of plan.objects) {
      expect(m.metadata.labels).toEqual({ [MANAGED_BY_LABEL]: 'kubemcsa', [TARGET_LABEL]: 'cluster1', [GRANT_LABEL]: 'pod-lister' });
    }
    expect(grantObjectsSelector(sourceSelector('cluster1'))).toBe(`${sourceSelector('cluster1')},${GRANT_LABEL}`);
  });

  it('records the grant last, as an annotation on the importer that parseGrants reads back', () => {
    expect(plan.record).toEqual({
      importer: { apiVersion: 'v1', kind: 'ServiceAccount', name: 'cluster1', namespace: INSTALL_NAMESPACE },
      key: grantAnnotationKey(sa),
      value: 'team-a/pod-lister',
    });
    expect(parseGrants({ [plan.record.key]: plan.record.value })).toEqual([sa]);
    expect(describeGrantPlan(plan, 'cluster2').at(-1)).toMatch(/record the grant on ServiceAccount multicluster-service-account\/cluster1/);
  });

  it('revoke deletes the anchor first, then the binding, then the role', () => {
    expect(plan.removals.map((r) => r.kind)).toEqual(['Secret', 'RoleBinding', 'Role']);
    expect(plan.sharedClusterRole).toBeUndefined();
    const lines = describeRevokePlan(plan, 'cluster2');
    expect(lines[1]).toMatch(/remove annotation/);
    expect(lines[2]).toMatch(/delete Secret team-a\/.* \(tokens minted under the grant stop authenticating\)/);
  });

  it('pre-flight asks for what it writes and the token right it grants, in that namespace', () => {
    expect(grantPermissions(plan).map(describePermission)).toEqual([
      'create secrets in namespace team-a',
      'patch secrets in namespace team-a',
      'create roles.rbac.authorization.k8s.io in namespace team-a',
      'patch roles.rbac.authorization.k8s.io in namespace team-a',
      'create rolebindings.rbac.authorization.k8s.io in namespace team-a',
      'patch rolebindings.rbac.authorization.k8s.io in namespace team-a',
      `get serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
      `patch serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
      'create serviceaccounts/token in namespace team-a',
    ]);
    expect(revokePermissions(plan).map(describePermission)).toEqual([
      `get serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
      `patch serviceaccounts in namespace ${INSTALL_NAMESPACE}`,
      'get secrets in namespace team-a',
      'delete secrets in namespace team-a',
      'get rolebindings.rbac.authorization.k8s.io in namespace team-a',
      'delete rolebindings.rbac.authorization.k8s.io in namespace team-a',
      'get roles.rbac.authorization.k8s.io in namespace team-a',
      'delete roles.rbac.authorization.k8s.io in namespace team-a',
    ]);
  });

  it('distinct targets and ServiceAccounts get distinct objects', () => {
    const names = [grantPlan('cluster1', sa), grantPlan('cluster3', sa), grantPlan('cluster1', { ...sa, serviceAccount: 'other' }), grantPlan('cluster1', ns)].map((p) => p.objects[0]!.metadata.name);
    expect(new Set(names).size).toBe(4);
  });
});

describe('grant plan: a namespace', () => {
  it('is the same without resourceNames, labelled `all`', () => {
    const plan = grantPlan('cluster1', ns);
    expect(plan.scope).toBe('namespace');
    expect(plan.objects.map((m) => m.kind)).toEqual(['Secret', 'Role', 'RoleBinding']);
    expect(plan.objects[1]!.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] },
    ]);
    expect(plan.objects[0]!.metadata.labels?.[GRANT_LABEL]).toBe('all');
    expect(plan.record.value).toBe('team-a/*');
  });
});

describe('grant plan: cluster-wide', () => {
  const plan = grantPlan('cluster1', wide);

  it('binds the shared token-minter ClusterRole with a ClusterRoleBinding named after the grant; no anchor', () => {
    expect(kindsAndNames(plan.objects)).toEqual([`ClusterRole /${TOKEN_MINTER_CLUSTER_ROLE}`, `ClusterRoleBinding /${grantObjectName('cluster1', wide)}`]);
    expect(plan.objects[0]!.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
      // The marker the source's importer admission policy asks of unbound tokens.
      { apiGroups: ['multicluster.admiralty.io'], resources: ['unboundtokens'], verbs: ['create'] },
    ]);
    expect(plan.objects[0]!.metadata.labels).toEqual({ [MANAGED_BY_LABEL]: 'kubemcsa' });
    expect(plan.objects[1]!.subjects).toEqual(importer);
    expect(anchorFor('cluster1', plan.grant)).toBeUndefined();
    expect(plan.record.value).toBe('*/*');
  });

  it('revoke deletes the binding, then the ClusterRole once unused', () => {
    expect(plan.removals.map((r) => r.kind)).toEqual(['ClusterRoleBinding']);
    expect(plan.sharedClusterRole).toMatchObject({ kind: 'ClusterRole', name: TOKEN_MINTER_CLUSTER_ROLE });
    expect(describeRevokePlan(plan, 'cluster2').at(-1)).toMatch(/if no other binding uses it/);
  });

  it('asks for the cluster-wide token right', () => {
    expect(grantPermissions(plan).map(describePermission)).toContain('create serviceaccounts/token');
    expect(grantPermissions(plan).map(describePermission)).toContain('create clusterrolebindings.rbac.authorization.k8s.io');
  });

  it('warns that every ServiceAccount but kube-system and the install namespace is covered and cannot be revoked early', () => {
    const w = clusterWideWarning('cluster1', 'cluster2');
    expect(w).toMatch(/^WARNING: /);
    expect(w).toMatch(/every ServiceAccount of cluster cluster2 except those in kube-system and multicluster-service-account/);
    expect(w).toMatch(/cannot be revoked before they expire/);
  });
});

describe('unbootstrap finds grant objects', () => {
  it('derives each anchor Secret from a grant Role (no Secret listing), and deletes only grant-labelled objects', () => {
    const plan = grantPlan('cluster1', sa);
    const found = [refOf(plan.objects[2]!), refOf(plan.objects[1]!), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', name: 'x' }];
    expect(anchorsOfRoles(found)).toEqual([refOf(plan.objects[0]!)]);
    expect(isGrantObject(plan.objects[0]!.metadata.labels)).toBe(true);
    expect(isGrantObject({ [MANAGED_BY_LABEL]: 'kubemcsa', [TARGET_LABEL]: 'cluster1' })).toBe(false);
    expect(isGrantObject({ [GRANT_LABEL]: 'x' })).toBe(false);
  });
});

describe('refusals', () => {
  it.each(['kube-system', INSTALL_NAMESPACE])('never grants anything in %s', (namespace) => {
    expect(() => grantPlan('cluster1', { namespace, serviceAccount: 'x' })).toThrow(UsageError);
    expect(() => checkGrantable({ namespace, serviceAccount: '*' })).toThrow(new RegExp(`namespace ${namespace} is never granted: `));
  });

  it('allows any other namespace and the cluster-wide grant', () => {
    expect(() => checkGrantable({ namespace: 'kube-public', serviceAccount: 'x' })).not.toThrow();
    expect(() => checkGrantable(wide)).not.toThrow();
  });
});
