import { describe, expect, it } from '@jest/globals';
import { UsageError } from '../../../src/bootstrap/errors.js';
import { parseGrantOptions } from '../../../src/bootstrap/options.js';
import { federatedGrantBinding, isFederatedGrantObject } from '../../../src/federation/grant.js';

describe('federated grants', () => {
  it('bind the ClusterRole to the mapped user in the namespace of the same name', () => {
    expect(federatedGrantBinding('cluster1', { namespace: 'team-a', serviceAccount: 'pod-lister' }, 'view')).toEqual({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: {
        name: 'mcsa-federated.cluster1.pod-lister.view',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'kubemcsa', 'multicluster.admiralty.io/federated-target': 'cluster1' },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'mcsa:cluster1:system:serviceaccount:team-a:pod-lister' }],
    });
  });

  it('bind the namespace group for --all-service-accounts', () => {
    const b = federatedGrantBinding('cluster1', { namespace: 'team-a', serviceAccount: '*' }, 'system:aggregate-to-view');
    expect(b.metadata.name).toBe('mcsa-federated.cluster1.all.system-aggregate-to-view');
    expect(b['subjects']).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'mcsa:cluster1:system:serviceaccounts:team-a' }]);
  });

  it('keep long names within 253 characters and distinct', () => {
    const t = 'a'.repeat(200);
    const a = federatedGrantBinding(t, { namespace: 'n', serviceAccount: 'b'.repeat(100) }, 'view').metadata.name;
    const b = federatedGrantBinding(t, { namespace: 'n', serviceAccount: `${'b'.repeat(99)}c` }, 'view').metadata.name;
    expect(a.length).toBeLessThanOrEqual(253);
    expect(a).not.toBe(b);
  });

  it('recognise their own objects only', () => {
    expect(isFederatedGrantObject(federatedGrantBinding('t', { namespace: 'n', serviceAccount: 's' }, 'view').metadata.labels)).toBe(true);
    expect(isFederatedGrantObject({ 'app.kubernetes.io/managed-by': 'kubemcsa' })).toBe(false);
    expect(isFederatedGrantObject(undefined)).toBe(false);
  });

  it('parse: --federated needs --role and a namespace; --role needs --federated', () => {
    expect(parseGrantOptions('sa', { namespace: 'team-a', targetName: 't', federated: true, role: 'view' })).toEqual({
      source: {},
      target: { name: 't' },
      grant: { namespace: 'team-a', serviceAccount: 'sa' },
      dryRun: false,
      federated: { role: 'view' },
    });
    expect(() => parseGrantOptions('sa', { namespace: 'team-a', targetName: 't', federated: true })).toThrow(/--federated needs --role/);
    expect(() => parseGrantOptions('sa', { namespace: 'team-a', targetName: 't', role: 'view' })).toThrow(/--role is for federated grants/);
    expect(() => parseGrantOptions(undefined, { clusterWide: true, targetName: 't', federated: true, role: 'view' })).toThrow(/not --cluster-wide/);
    expect(() => parseGrantOptions('sa', { namespace: 'team-a', targetName: 't', federated: true, role: 'a/b' })).toThrow(UsageError);
    expect(() => parseGrantOptions('sa', { namespace: 'kube-system', targetName: 't', federated: true, role: 'view' })).toThrow(/never granted/);
  });
});
