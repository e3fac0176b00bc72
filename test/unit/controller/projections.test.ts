import { describe, expect, it } from '@jest/globals';
import { of } from 'rxjs';
import type { CacheChange } from '../../../streams/cache.js';
import { importKeys } from '../../../streams/controller/keys.js';
import type { CachedImport } from '../../../streams/controller/projections.js';
import { projectImport, projectSecret } from '../../../streams/controller/projections.js';
import { buildImportSecret } from '../../../src/secret.js';

const credential = { server: 'https://s', caPem: 'CA', token: 'tok', namespace: 'remote' };
function secret(namespace: string) {
  return buildImportSecret({
    importName: 'imp', importNamespace: namespace, importUid: 'uid-1', credential,
    issued: new Date(0), expiration: new Date(3600_000), remoteUid: 'r', fingerprint: 'f',
  });
}

/** The keys the controller's key pipeline reconciles for one import change. */
function keysFor(change: CacheChange<CachedImport>): string[] {
  const keys: string[] = [];
  const fx = { isOwnWrite: () => false, forget: () => undefined, namespacesChanged: () => undefined };
  importKeys(of({ kind: 'import' as const, change }), fx).subscribe((k) => keys.push(k));
  return keys;
}

describe('projections', () => {
  it('caches a Secret without its token, and notices hand edits', () => {
    const p = projectSecret('multicluster-service-account');
    const s = secret('team-a');
    const cached = p({ ...s, metadata: { ...s.metadata, resourceVersion: '7' } });
    expect(cached).toMatchObject({ namespace: 'team-a', importName: 'imp', controllerUid: 'uid-1', foreignController: false, dataIntact: true, resourceVersion: '7' });
    expect(cached.credential).toBeUndefined();
    expect(JSON.stringify(cached)).not.toContain(Buffer.from('tok').toString('base64'));
    const edited = p({ ...s, data: { ...s.data, server: Buffer.from('https://evil').toString('base64') } });
    expect(edited.dataIntact).toBe(false);
  });

  it('keeps the credential of registrations only', () => {
    const cached = projectSecret('multicluster-service-account')(secret('multicluster-service-account'));
    expect(cached.credential).toEqual(credential);
  });

  it('marks Secrets controlled by something else', () => {
    const s = secret('team-a');
    const foreign = projectSecret('x')({ ...s, metadata: { ...s.metadata, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'd', uid: 'u', controller: true }] } });
    expect(foreign).toMatchObject({ foreignController: true, controllerUid: undefined });
  });

  it('rejects objects that do not decode, naming the field', () => {
    expect(() => projectImport({ metadata: { name: 'a' }, spec: { clusterName: 'c' } })).toThrow(/spec\.namespace: expected string/);
    expect(() => projectSecret('x')({ metadata: {} })).toThrow(/metadata\.name/);
  });

  it('reconciles on spec, rotation, uid and deletion changes, not on status-only updates', () => {
    const base = projectImport({ metadata: { name: 'a', namespace: 'n', uid: 'u', generation: 1, resourceVersion: '1', managedFields: [{}] }, spec: { clusterName: 'c', namespace: 'n', name: 's' } });
    expect(base.sai.metadata).not.toHaveProperty('managedFields');
    const statusOnly = { ...base, resourceVersion: '2', sai: { ...base.sai, status: { conditions: [] } } };
    expect(keysFor({ type: 'updated', key: 'n/a', before: base, after: statusOnly })).toEqual([]);
    expect(keysFor({ type: 'updated', key: 'n/a', before: base, after: { ...base, generation: 2 } })).toEqual(['n/a']);
    expect(keysFor({ type: 'updated', key: 'n/a', before: base, after: { ...base, uid: 'u2' } })).toEqual(['n/a']);
    expect(keysFor({ type: 'updated', key: 'n/a', before: base, after: { ...base, rotation: 'x' } })).toEqual(['n/a']);
    expect(keysFor({ type: 'updated', key: 'n/a', before: base, after: { ...base, deleting: true } })).toEqual(['n/a']);
    expect(keysFor({ type: 'added', key: 'n/a', after: base })).toEqual(['n/a']);
    expect(keysFor({ type: 'deleted', key: 'n/a', before: base })).toEqual(['n/a']);
  });
});
