import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import {
  formatAuthenticationConfiguration,
  jwtAuthenticatorFor,
  looksLikeJson,
  mergeJwtAuthenticator,
  parseAuthenticationConfiguration,
  removeJwtAuthenticator,
  type AuthenticationConfiguration,
} from '../../../src/federation/authenticator.js';
import { defaultFederatedAudience, federatedGroups, federatedPrefix, federatedUsername } from '../../../src/federation/identity.js';

const emptyAuthenticationConfiguration = (): AuthenticationConfiguration => parseAuthenticationConfiguration('', 'empty');

const trust = { targetName: 'cluster1', issuerUrl: 'https://127.0.0.1:6443', caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', audience: 'multicluster.admiralty.io/cluster2' };

describe('the federated identity (ADR 0022)', () => {
  it('prefixes the sub and the ServiceAccount groups with mcsa:<target>:', () => {
    expect(federatedPrefix('cluster1')).toBe('mcsa:cluster1:');
    expect(federatedUsername('cluster1', 'team-a', 'pod-lister')).toBe('mcsa:cluster1:system:serviceaccount:team-a:pod-lister');
    expect(federatedGroups('cluster1', 'team-a')).toEqual(['mcsa:cluster1:system:serviceaccounts', 'mcsa:cluster1:system:serviceaccounts:team-a']);
    expect(defaultFederatedAudience('cluster2')).toBe('multicluster.admiralty.io/cluster2');
  });

  it('cannot collide with the source’s own ServiceAccounts or system: users', () => {
    for (const name of [federatedUsername('t', 'kube-system', 'default'), ...federatedGroups('t', 'kube-system')]) {
      expect(name.startsWith('system:')).toBe(false);
      expect(name.startsWith('mcsa:t:')).toBe(true);
    }
  });
});

describe('the JWT authenticator entry', () => {
  const entry = jwtAuthenticatorFor(trust);

  it('trusts the target issuer for the one audience, with its CA', () => {
    expect(entry.issuer).toEqual({ url: trust.issuerUrl, certificateAuthority: trust.caPem, audiences: [trust.audience] });
    expect(jwtAuthenticatorFor({ ...trust, discoveryUrl: 'https://oidc.example/.well-known/openid-configuration' }).issuer.discoveryURL).toBe(
      'https://oidc.example/.well-known/openid-configuration',
    );
  });

  it('maps sub behind the prefix, groups per namespace, uid from sub, the pod as extra', () => {
    expect(entry.claimMappings.username).toEqual({ claim: 'sub', prefix: 'mcsa:cluster1:' });
    expect(entry.claimMappings.uid).toEqual({ claim: 'sub' });
    expect(entry.claimMappings.groups.expression).toBe(
      "['mcsa:cluster1:system:serviceaccounts', 'mcsa:cluster1:system:serviceaccounts:' + claims['kubernetes.io'].namespace]",
    );
    expect(entry.claimMappings.extra.map((e) => e.key)).toEqual(['multicluster.admiralty.io/pod-name', 'multicluster.admiralty.io/pod-namespace']);
    // The API server refuses extra keys under kubernetes.io and k8s.io, and upper case.
    for (const { key } of entry.claimMappings.extra) expect(key).toMatch(/^[a-z0-9.-]+\/[a-z0-9-]+$/);
  });

  it('accepts only pod-bound ServiceAccount tokens living at most 24 h', () => {
    const rules = entry.claimValidationRules.map((r) => r.expression);
    expect(rules).toContain("has(claims['kubernetes.io'].namespace) && has(claims['kubernetes.io'].pod)");
    expect(rules).toContain('has(claims.iat) && has(claims.exp) && claims.exp - claims.iat <= 86400.0');
    expect(rules).toContain("has(claims.sub) && claims.sub.startsWith('system:serviceaccount:')");
    for (const r of entry.claimValidationRules) expect(r.message).not.toBe('');
    expect(entry.userValidationRules[0]!.expression).toBe("user.username.startsWith('mcsa:cluster1:system:serviceaccount:')");
  });

  it('escapes quotes in CEL string literals', () => {
    expect(jwtAuthenticatorFor({ ...trust, targetName: "a'b" }).userValidationRules[0]!.expression).toBe("user.username.startsWith('mcsa:a\\'b:system:serviceaccount:')");
  });
});

describe('AuthenticationConfiguration files', () => {
  const other = { issuer: { url: 'https://idp.example', audiences: ['k8s'] }, claimMappings: { username: { claim: 'email', prefix: 'idp:' } }, note: 'kept' };
  const withOther = (): AuthenticationConfiguration => ({ ...emptyAuthenticationConfiguration(), anonymous: { enabled: true }, jwt: [other] });

  it('adds an entry, keeping other entries and fields as they are', () => {
    const merged = mergeJwtAuthenticator(withOther(), jwtAuthenticatorFor(trust));
    expect(merged.jwt).toEqual([other, jwtAuthenticatorFor(trust)]);
    expect(merged['anonymous']).toEqual({ enabled: true });
  });

  it('replaces the entry of the same issuer URL (the API server refuses duplicates)', () => {
    const once = mergeJwtAuthenticator(withOther(), jwtAuthenticatorFor(trust));
    const twice = mergeJwtAuthenticator(once, jwtAuthenticatorFor({ ...trust, audience: 'changed' }));
    expect(twice.jwt).toHaveLength(2);
    expect(twice.jwt![0]).toEqual(other);
    expect((twice.jwt![1] as { issuer: { audiences: string[] } }).issuer.audiences).toEqual(['changed']);
  });

  it('merges into an empty or null jwt list', () => {
    expect(mergeJwtAuthenticator(emptyAuthenticationConfiguration(), jwtAuthenticatorFor(trust)).jwt).toHaveLength(1);
    expect(mergeJwtAuthenticator({ ...emptyAuthenticationConfiguration(), jwt: null }, jwtAuthenticatorFor(trust)).jwt).toHaveLength(1);
  });

  it('removes by issuer URL or by the target’s username prefix, and only that', () => {
    const merged = mergeJwtAuthenticator(withOther(), jwtAuthenticatorFor(trust));
    expect(removeJwtAuthenticator(merged, { issuerUrl: trust.issuerUrl })).toEqual({ doc: withOther(), removed: 1 });
    expect(removeJwtAuthenticator(merged, { targetName: 'cluster1' })).toEqual({ doc: withOther(), removed: 1 });
    expect(removeJwtAuthenticator(merged, { targetName: 'cluster3' }).removed).toBe(0);
    expect(removeJwtAuthenticator(withOther(), { issuerUrl: 'https://idp.example' }).doc.jwt).toEqual([]);
  });

  it('parses YAML and JSON, treats an empty file as an empty configuration, refuses anything else naming the file', () => {
    const yamlText = formatAuthenticationConfiguration(mergeJwtAuthenticator(withOther(), jwtAuthenticatorFor(trust)), 'yaml');
    expect(parseAuthenticationConfiguration(yamlText, 'f.yaml')).toEqual(mergeJwtAuthenticator(withOther(), jwtAuthenticatorFor(trust)));
    const jsonText = formatAuthenticationConfiguration(withOther(), 'json');
    expect(looksLikeJson(jsonText)).toBe(true);
    expect(looksLikeJson(yamlText)).toBe(false);
    expect(parseAuthenticationConfiguration(jsonText, 'f.json')).toEqual(withOther());
    expect(parseAuthenticationConfiguration('  \n', 'f.yaml')).toEqual({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AuthenticationConfiguration', jwt: [] });
    expect(() => parseAuthenticationConfiguration('apiVersion: v1\nkind: Config\n', 'kubeconfig.yaml')).toThrow(/AuthenticationConfiguration in kubeconfig.yaml: .*apiVersion/);
    expect(() => parseAuthenticationConfiguration(': : :\n  - [', 'bad.yaml')).toThrow(/bad.yaml is not YAML or JSON/);
    expect(() => parseAuthenticationConfiguration(formatAuthenticationConfiguration({ ...emptyAuthenticationConfiguration(), jwt: [{ issuer: {} }] }, 'yaml'), 'f.yaml')).toThrow(/jwt\.0\.issuer\.url/);
  });

  it('puts a refresh stamp on one comment line of a YAML file, which changes its bytes and nothing it says; JSON cannot carry one', () => {
    const doc = mergeJwtAuthenticator(emptyAuthenticationConfiguration(), jwtAuthenticatorFor(trust));
    const plain = formatAuthenticationConfiguration(doc, 'yaml');
    const stamped = formatAuthenticationConfiguration(doc, 'yaml', 'refreshed at 1\nkind: Injected');
    expect(stamped).toBe(`# refreshed at 1 kind: Injected\n${plain}`);
    expect(formatAuthenticationConfiguration(doc, 'yaml', 'refreshed at 2')).not.toBe(stamped);
    expect(parseAuthenticationConfiguration(stamped, 'f.yaml')).toEqual(doc);
    expect(() => formatAuthenticationConfiguration(doc, 'json', 'x')).toThrow(/JSON .* cannot carry a comment/);
  });

  it('writes a PEM CA as a block scalar the API server reads back verbatim', () => {
    const text = formatAuthenticationConfiguration(mergeJwtAuthenticator(emptyAuthenticationConfiguration(), jwtAuthenticatorFor(trust)), 'yaml');
    expect((parse(text) as { jwt: Array<{ issuer: { certificateAuthority: string } }> }).jwt[0]!.issuer.certificateAuthority).toBe(trust.caPem);
  });
});
