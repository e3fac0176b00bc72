import { describe, expect, it } from '@jest/globals';
import { FEDERATED_SOURCE_LABEL } from '../../../src/constants.js';
import { discoveryUrlOf, judgeAnonymousAnswer } from '../../../src/federation/discovery.js';
import { anonymousDiscoveryBinding, decodeFederatedRecord, federatedRecordManifest, federatedRecordName, federatedRecordSelector } from '../../../src/federation/record.js';
import { isDns1123Subdomain } from '../../../src/naming.js';

const source = { sourceName: 'cluster2', server: 'https://cluster2.example:6443', caPem: 'PEM', audience: 'multicluster.admiralty.io/cluster2' };

describe('the federated source record', () => {
  it('is ConfigMap federated-<source> in the install namespace, labelled for the controller, with server, ca.crt and audience', () => {
    expect(federatedRecordManifest(source)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'federated-cluster2',
        namespace: 'multicluster-service-account',
        labels: { 'app.kubernetes.io/managed-by': 'kubemcsa', [FEDERATED_SOURCE_LABEL]: 'cluster2' },
        annotations: { [FEDERATED_SOURCE_LABEL]: 'cluster2' },
      },
      data: { server: source.server, 'ca.crt': 'PEM', audience: source.audience },
    });
    expect(FEDERATED_SOURCE_LABEL).toBe('multicluster.admiralty.io/federated-source');
    expect(federatedRecordSelector).toBe('multicluster.admiralty.io/federated-source,app.kubernetes.io/managed-by=kubemcsa');
  });

  it('keeps long source names distinct and valid: a hashed name and label, the full name in an annotation', () => {
    const long = `${'a'.repeat(120)}.${'b'.repeat(132)}`;
    const other = `${'a'.repeat(120)}.${'b'.repeat(131)}c`;
    expect(long).toHaveLength(253);
    const m = federatedRecordManifest({ ...source, sourceName: long });
    expect(m.metadata.name.length).toBeLessThanOrEqual(253);
    expect(isDns1123Subdomain(m.metadata.name)).toBe(true);
    expect(federatedRecordName(long)).not.toBe(federatedRecordName(other));
    expect(m.metadata.labels![FEDERATED_SOURCE_LABEL]!.length).toBeLessThanOrEqual(63);
    expect(decodeFederatedRecord(m, 'record').sourceName).toBe(long);
  });

  it('decodes what the cluster returns, and names the record when a key is missing', () => {
    expect(decodeFederatedRecord({ ...federatedRecordManifest(source), metadata: { ...federatedRecordManifest(source).metadata, uid: 'u' } }, 'r')).toEqual({ recordName: 'federated-cluster2', ...source });
    expect(() => decodeFederatedRecord({ metadata: { name: 'federated-x' }, data: { server: 's' } }, 'ConfigMap x/federated-x in cluster1')).toThrow(/ConfigMap x\/federated-x in cluster1: .*ca\.crt/);
  });

  it('opens issuer discovery to anonymous callers with the built-in role only', () => {
    const b = anonymousDiscoveryBinding();
    expect(b['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' });
    expect(b['subjects']).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }]);
  });
});

describe('anonymous discovery checks', () => {
  it('derives the discovery URL from the issuer unless given', () => {
    expect(discoveryUrlOf('https://h:6443')).toBe('https://h:6443/.well-known/openid-configuration');
    expect(discoveryUrlOf('https://h/path/')).toBe('https://h/path/.well-known/openid-configuration');
    expect(discoveryUrlOf('https://h', 'https://d/x')).toBe('https://d/x');
  });

  it('says what to grant when refused, and tells unreachable from unexpected', () => {
    expect(judgeAnonymousAnswer('discovery', 'u', { kind: 'http', status: 200, body: '{"issuer":"x"}' })).toEqual({ ok: true });
    for (const status of [401, 403]) {
      const v = judgeAnonymousAnswer('discovery', 'https://t/.well-known/openid-configuration', { kind: 'http', status, body: '' });
      expect(v).toMatchObject({ ok: false, reason: 'refused' });
      expect(v.ok ? '' : v.message).toMatch(/--allow-anonymous-discovery.*clusterrolebinding .*--clusterrole=system:service-account-issuer-discovery --group=system:unauthenticated/);
    }
    expect(judgeAnonymousAnswer('JWKS', 'u', { kind: 'http', status: 404, body: '' })).toMatchObject({ ok: false, reason: 'unexpected', message: 'JWKS u answered HTTP 404' });
    expect(judgeAnonymousAnswer('JWKS', 'u', { kind: 'http', status: 200, body: '<html>' })).toMatchObject({ ok: false, reason: 'unexpected' });
    expect(judgeAnonymousAnswer('JWKS', 'u', { kind: 'unreachable', error: 'ECONNREFUSED' })).toEqual({ ok: false, reason: 'unreachable', message: 'JWKS u is unreachable from here: ECONNREFUSED' });
  });
});
