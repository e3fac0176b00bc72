import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { IMPORT_LABEL, IMPORT_NAME_ANNOTATION } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, buildPortableSecret, credentialFromSecretData, importNameOfSecret, mintFingerprint, SecretAnnotations } from '../../src/secret.js';

const credential = { server: 'https://127.0.0.1:6443', caPem: '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n', token: 'tok-123', namespace: 'default' };
const decode = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

describe('generated Secret', () => {
  const secretOptions = {
    importName: 'cluster2-default-pod-lister',
    importNamespace: 'team-a',
    importUid: 'uid-1',
    credential,
    issued: new Date('2026-01-01T00:00:00Z'),
    expiration: new Date('2026-01-01T01:00:00Z'),
    remoteUid: 'remote-uid',
    fingerprint: 'fp',
  };
  const secret = buildImportSecret(secretOptions);

  it('has the contract name, label, owner and keys', () => {
    expect(secret.metadata?.name).toBe(secretNameForImport('cluster2-default-pod-lister'));
    expect(secret.metadata?.namespace).toBe('team-a');
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata?.labels).toEqual({ [IMPORT_LABEL]: 'cluster2-default-pod-lister' });
    expect(secret.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ServiceAccountImport', name: 'cluster2-default-pod-lister', uid: 'uid-1', controller: true }),
    ]);
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'config', 'namespace', 'server', 'token']);
    expect(secret.metadata?.annotations?.[SecretAnnotations.expiration]).toBe('2026-01-01T01:00:00.000Z');
    expect(credentialFromSecretData(secret.data)).toEqual(credential);
  });

  it('labels the Secret of a 253-character import with a valid label value and keeps the full name in an annotation', () => {
    const importName = `${'x'.repeat(120)}.${'y'.repeat(132)}`;
    expect(importName).toHaveLength(253);
    const long = buildImportSecret({ ...secretOptions, importName });
    const value = long.metadata?.labels?.[IMPORT_LABEL] ?? '';
    expect(value.length).toBeLessThanOrEqual(63);
    expect(value).toMatch(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/);
    expect(long.metadata?.annotations?.[IMPORT_NAME_ANNOTATION]).toBe(importName);
    expect(long.metadata?.name?.length).toBeLessThanOrEqual(253);
    expect(importNameOfSecret(long.metadata)).toBe(importName);
  });

  it('reads the import of a Secret written before long names (label only) from its label', () => {
    expect(importNameOfSecret({ labels: { [IMPORT_LABEL]: 'cluster2-default-pod-lister' } })).toBe('cluster2-default-pod-lister');
    expect(importNameOfSecret({})).toBe('');
  });

  it('writes a kubeconfig that reads the mounted token file', () => {
    const kc = parse(decode(secret.data?.config));
    expect(kc['current-context']).toBe('cluster2-default-pod-lister');
    expect(kc.contexts[0].context).toEqual({ cluster: 'cluster2-default-pod-lister', user: 'cluster2-default-pod-lister', namespace: 'default' });
    expect(kc.users[0].user).toEqual({ tokenFile: '/var/run/secrets/admiralty.io/serviceaccountimports/cluster2-default-pod-lister/token' });
    expect(decode(kc.clusters[0].cluster['certificate-authority-data'])).toBe(credential.caPem);
    expect(decode(secret.data?.config)).not.toContain('tok-123');
  });

  it('writes values that need quoting safely', () => {
    const tricky = buildPortableSecret({ name: 'x', credential: { ...credential, server: 'https://h:1/p?a=b#c: d', token: 'a"b\\c\nd', namespace: 'yes' } });
    const kc = parse(decode(tricky.data?.config));
    expect(kc.clusters[0].cluster.server).toBe('https://h:1/p?a=b#c: d');
    expect(kc.users[0].user.token).toBe('a"b\\c\nd');
    expect(kc.contexts[0].context.namespace).toBe('yes');
  });

  it('portable Secrets inline the token', () => {
    const p = buildPortableSecret({ name: 'exported', credential });
    expect(parse(decode(p.data?.config)).users[0].user).toEqual({ token: 'tok-123' });
    expect(p.metadata).toEqual({ name: 'exported' });
  });

  it('fingerprints change with what invalidates a token', () => {
    const spec = { clusterName: 'c', namespace: 'n', name: 's' };
    const base = mintFingerprint({ spec, server: 's', caPem: 'ca' });
    expect(mintFingerprint({ spec: { ...spec }, server: 's', caPem: 'ca\n' })).toBe(base);
    expect(mintFingerprint({ spec: { ...spec, expirationSeconds: 3600 }, server: 's', caPem: 'ca' })).toBe(base);
    expect(mintFingerprint({ spec: { ...spec, name: 't' }, server: 's', caPem: 'ca' })).not.toBe(base);
    expect(mintFingerprint({ spec: { ...spec, audiences: ['x'] }, server: 's', caPem: 'ca' })).not.toBe(base);
    expect(mintFingerprint({ spec, server: 's2', caPem: 'ca' })).not.toBe(base);
    expect(mintFingerprint({ spec, server: 's', caPem: 'ca2' })).not.toBe(base);
  });
});
