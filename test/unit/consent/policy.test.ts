import { describe, expect, it } from '@jest/globals';
import { evaluatePolicy, type ImportPolicy } from '../../../src/consent/policy.js';

type PolicyQuery = Parameters<typeof evaluatePolicy>[0];

const q: PolicyQuery = { namespace: 'team-a', clusterName: 'cluster2', remoteNamespace: 'team-a', remoteName: 'reader' };
const policy = (name: string, spec: ImportPolicy['spec']): ImportPolicy => ({ metadata: { name }, spec });

describe('evaluatePolicy', () => {
  it('allows namespace sameness by default, with the default lifetime and no extra audience', () => {
    expect(evaluatePolicy(q, [])).toEqual({ allowed: true, expirationSeconds: 3600, audiences: [] });
    expect(evaluatePolicy({ ...q, expirationSeconds: 86_400 }, [])).toMatchObject({ allowed: true, expirationSeconds: 86_400 }); // the default cap, 24 h
  });

  it.each([
    ['another remote namespace', { remoteNamespace: 'team-b' }, /only name remote namespace team-a \(namespace sameness\)/],
    ['kube-system', { namespace: 'kube-system', remoteNamespace: 'kube-system' }, /remote namespace kube-system is never importable/],
    ['the install namespace (registrations and importers)', { remoteNamespace: 'multicluster-service-account' }, /multicluster-service-account is never importable/],
    ['an over-long lifetime', { expirationSeconds: 86401 }, /expirationSeconds 86401 is over 86400 \(the default maximum\)/],
    ['a foreign audience', { audiences: ['sts.amazonaws.com'] as string[] }, /audience "sts.amazonaws.com" is not allowed/],
  ] as const)('refuses %s, naming the rule', (_n, patch, message) => {
    const v = evaluatePolicy({ ...q, ...(patch as Partial<PolicyQuery>) }, []);
    expect(v.allowed).toBe(false);
    expect(!v.allowed && v.message).toMatch(message);
    expect(!v.allowed && v.message).toContain('cluster "cluster2"');
  });

  it('lets a mapping allow another remote namespace, only for the listed ServiceAccounts and clusters', () => {
    const p = policy('shared', { clusters: ['cluster2'], mappings: [{ namespace: 'team-a', remoteNamespace: 'shared', serviceAccounts: ['reader'] }] });
    expect(evaluatePolicy({ ...q, remoteNamespace: 'shared' }, [p])).toMatchObject({ allowed: true });
    expect(evaluatePolicy({ ...q, remoteNamespace: 'shared', remoteName: 'writer' }, [p])).toMatchObject({ allowed: false });
    expect(evaluatePolicy({ ...q, namespace: 'team-b', remoteNamespace: 'shared' }, [p])).toMatchObject({ allowed: false });
    expect(evaluatePolicy({ ...q, clusterName: 'cluster3', remoteNamespace: 'shared' }, [p])).toMatchObject({ allowed: false });
    // Never-importable namespaces stay so whatever a mapping says.
    const bad = policy('bad', { mappings: [{ namespace: 'team-a', remoteNamespace: 'kube-system' }] });
    expect(evaluatePolicy({ ...q, remoteNamespace: 'kube-system' }, [bad])).toMatchObject({ allowed: false });
  });

  it('lets a policy turn sameness off, cap lifetimes (the lowest wins) and allow audiences per mapping', () => {
    const strict = policy('strict', { clusters: ['cluster2'], namespaceSameness: false, maxExpirationSeconds: 1800 });
    const lax = policy('lax', { maxExpirationSeconds: 7200, mappings: [{ namespace: 'team-a', remoteNamespace: 'team-a', audiences: ['vault'] }] });
    expect(evaluatePolicy(q, [strict])).toMatchObject({ allowed: false });
    expect(!evaluatePolicy(q, [strict]).allowed && (evaluatePolicy(q, [strict]) as { message: string }).message).toMatch(/sameness is turned off .* strict/);
    expect(evaluatePolicy(q, [strict, lax])).toEqual({ allowed: true, expirationSeconds: 1800, audiences: [] });
    expect(evaluatePolicy({ ...q, expirationSeconds: 3600 }, [strict, lax])).toMatchObject({ allowed: false });
    expect(evaluatePolicy({ ...q, expirationSeconds: 7200, audiences: ['vault'] }, [lax])).toEqual({ allowed: true, expirationSeconds: 7200, audiences: ['vault'] });
    expect(evaluatePolicy({ ...q, audiences: ['vault', 'other'] }, [lax])).toMatchObject({ allowed: false });
  });

  it('judges registrations by the schema alone', () => {
    const reg = { namespace: 'multicluster-service-account', clusterName: 'cluster2', remoteNamespace: 'multicluster-service-account', remoteName: 'cluster1', expirationSeconds: 86400 };
    expect(evaluatePolicy(reg, [policy('strict', { namespaceSameness: false, maxExpirationSeconds: 600 })])).toEqual({ allowed: true, expirationSeconds: 86400, audiences: [] });
  });
});
