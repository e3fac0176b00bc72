// Marble tests of the controller's key pipeline (streams/controller/keys.ts): import and Secret
// changes, registry events and resync merged into the keys to reconcile, with the index folded in
// the same stream (an import is indexed before any later registry event is mapped), own-write
// echoes dropped, and the side effects (forget, remote namespaces) told in order.
import { describe, expect, it } from '@jest/globals';
import { TestScheduler } from 'rxjs/testing';
import { importKeys, resyncBatches, type KeyInput } from '../../../streams/controller/keys.js';
import { take } from 'rxjs';
import { projectImport, type CachedConfigMap, type CachedFederatedRecord, type CachedImport, type CachedSecret } from '../../../streams/controller/projections.js';

const imp = (name: string, cluster: string, remoteNs: string, sa: string, extra: { generation?: number; rv?: string; deleting?: boolean } = {}): CachedImport => {
  const i = projectImport({
    metadata: { name, namespace: 'team', uid: `uid-${name}`, generation: extra.generation ?? 1, resourceVersion: extra.rv ?? '1' },
    spec: { clusterName: cluster, namespace: remoteNs, name: sa },
  });
  return { ...i, deleting: extra.deleting ?? false };
};
const secret = (importName: string, rv: string): CachedSecret => ({
  namespace: 'team',
  name: `${importName}-token`,
  resourceVersion: rv,
  importName,
  foreignController: false,
  dataIntact: true,
  annotations: {},
});

const added = (i: CachedImport): KeyInput => ({ kind: 'import', change: { type: 'added', key: `team/${i.name}`, after: i } });
const updated = (b: CachedImport, a: CachedImport): KeyInput => ({ kind: 'import', change: { type: 'updated', key: `team/${a.name}`, before: b, after: a } });
const deleted = (i: CachedImport): KeyInput => ({ kind: 'import', change: { type: 'deleted', key: `team/${i.name}`, before: i } });
const secretChange = (s: CachedSecret, echo = false): KeyInput => ({ kind: 'secret', change: { type: 'updated', key: `team/${s.name}`, before: s, after: s, ...(echo ? { echo: true as const } : {}) } });

function effects() {
  const forgotten: string[] = [];
  const namespaces: string[] = [];
  const fx: Parameters<typeof importKeys>[1] = {
    forget: (k) => forgotten.push(k),
    namespacesChanged: (cluster, ns) => namespaces.push(`${cluster}:${[...ns].sort().join(',')}`),
  };
  return { fx, forgotten, namespaces };
}

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const a1 = imp('a', 'c1', 'r1', 'sa1');
const b1 = imp('b', 'c1', 'r2', 'sa2');
const c2 = imp('c', 'c2', 'r1', 'sa1');

describe('importKeys (marbles)', () => {
  it('maps import changes to their keys, and skips status-only updates', () => {
    const { fx } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const statusOnly = { ...a1, resourceVersion: '2' };
      const respec = imp('a', 'c1', 'r1', 'sa1', { generation: 2, rv: '3' });
      const inputs = cold<KeyInput>('a-b-c-d', { a: added(a1), b: updated(a1, statusOnly), c: updated(statusOnly, respec), d: deleted(respec) });
      expectObservable(importKeys(inputs, fx)).toBe('a---c-d', { a: 'team/a', c: 'team/a', d: 'team/a' });
    });
  });

  it('sends a cluster event to the imports of that cluster only, and a ServiceAccount event to its importers only', () => {
    const { fx, forgotten } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('abc-d-----e-----f', {
        a: added(a1),
        b: added(b1),
        c: added(c2),
        d: { kind: 'registry', event: { cluster: 'c1', kind: 'health', reachable: true } },
        e: { kind: 'registry', event: { cluster: 'c2', kind: 'serviceaccount', namespace: 'r1', name: 'sa1' } },
        f: { kind: 'registry', event: { cluster: 'c1', kind: 'synced' } },
      });
      expectObservable(importKeys(inputs, fx)).toBe('abc-(de)--g-----(hi)', { a: 'team/a', b: 'team/b', c: 'team/c', d: 'team/a', e: 'team/b', g: 'team/c', h: 'team/a', i: 'team/b' });
    });
    // A cluster that came back skips its imports' error backoff; a plain sync does not.
    expect(forgotten).toEqual(['team/a', 'team/b']);
  });

  it('indexes an import before a registry event that follows it in the same instant (order is the stream’s)', () => {
    const { fx } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('(ab)', { a: added(c2), b: { kind: 'registry', event: { cluster: 'c2', kind: 'grants' } } });
      expectObservable(importKeys(inputs, fx)).toBe('(ab)', { a: 'team/c', b: 'team/c' });
    });
  });

  it('forgets deleted and moving imports for their old cluster', () => {
    const { fx } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const moved = imp('a', 'c2', 'r9', 'sa1', { generation: 2, rv: '2' });
      const inputs = cold<KeyInput>('a-b-c-d', {
        a: added(a1),
        b: updated(a1, moved),
        c: { kind: 'registry', event: { cluster: 'c1', kind: 'changed' } },
        d: { kind: 'registry', event: { cluster: 'c2', kind: 'changed' } },
      });
      expectObservable(importKeys(inputs, fx)).toBe('a-b---d', { a: 'team/a', b: 'team/a', d: 'team/a' });
    });
  });

  it('maps Secret changes to their import, and drops the echo of its own write', () => {
    const { fx } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('a-b-c', { a: secretChange(secret('a', '7'), true), b: secretChange(secret('a', '8')), c: secretChange(secret('', '9')) });
      expectObservable(importKeys(inputs, fx)).toBe('--b--', { b: 'team/a' });
    });
  });

  it('passes a resync or policy change through as every key it names', () => {
    const { fx } = effects();
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('a', { a: { kind: 'all', keys: ['team/a', 'team/b'] } });
      expectObservable(importKeys(inputs, fx)).toBe('(ab)', { a: 'team/a', b: 'team/b' });
    });
  });

  it('tells the registry the remote namespaces in use when a namespace gains its first or loses its last import', () => {
    const { fx, namespaces } = effects();
    const a2 = imp('a2', 'c1', 'r1', 'sa9');
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('abcde', { a: added(a1), b: added(a2), c: added(b1), d: deleted(a1), e: deleted(a2) });
      expectObservable(importKeys(inputs, fx)).toBe('abcde', { a: 'team/a', b: 'team/a2', c: 'team/b', d: 'team/a', e: 'team/a2' });
    });
    expect(namespaces).toEqual(['c1:r1', 'c1:r1,r2', 'c1:r2']);
  });
});

describe('resyncBatches (marbles)', () => {
  it('hands out each resync\'s keys 50 at a time every 500 ms, reads the keys anew each period, and lets a period pass while one is still going', () => {
    const keys = Array.from({ length: 120 }, (_, i) => `team/i${i}`);
    let reads = 0;
    const keysNow = () => (reads++ === 0 ? keys : [...keys.slice(0, 10), 'team/new']);
    scheduler().run(({ expectObservable }) => {
      // Period 100 ms: the first resync takes 1 s (3 batches), so the periods at 200–1000 ms pass;
      // the one at 1,200 ms reads the keys of then (11).
      expectObservable(resyncBatches(100, keysNow).pipe(take(4))).toBe('100ms a 499ms b 499ms c 99ms (d|)', {
        a: keys.slice(0, 50),
        b: keys.slice(50, 100),
        c: keys.slice(100),
        d: [...keys.slice(0, 10), 'team/new'],
      });
    });
    expect(reads).toBe(2);
  });
});

describe('importKeys for federated imports (ADR 0022)', () => {
  const fed = (name: string, source: string): CachedImport =>
    projectImport({ metadata: { name, namespace: 'team', uid: `uid-${name}`, generation: 1, resourceVersion: '1' }, spec: { mode: 'Federated', clusterName: source } });
  const rec = (name: string, source: string, rv: string): CachedFederatedRecord => ({ namespace: 'multicluster-service-account', name, resourceVersion: rv, source, data: {} });
  const recordChange = (before: CachedFederatedRecord | undefined, after: CachedFederatedRecord | undefined): KeyInput => ({
    kind: 'record',
    change: { type: before && after ? 'updated' : after ? 'added' : 'deleted', key: `multicluster-service-account/${(after ?? before)!.name}`, ...(before ? { before } : {}), ...(after ? { after } : {}) },
  });
  const cm = (importName: string): CachedConfigMap => ({ namespace: 'team', name: `${importName}-federated`, resourceVersion: '5', importName, foreignController: false, dataHash: 'h' });

  it('sends a record change to the federated imports of its source (both sources when relabelled), never to token imports of a cluster of that name', () => {
    const { fx, namespaces } = effects();
    const f1 = fed('f1', 'c1');
    const f2 = fed('f2', 'c2');
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('abc-d-e----f', {
        a: added(a1), // a token import of cluster c1
        b: added(f1),
        c: added(f2),
        d: recordChange(undefined, rec('r', 'c1', '1')),
        e: recordChange(rec('r', 'c1', '1'), rec('r', 'c2', '2')),
        f: { kind: 'registry', event: { cluster: 'c1', kind: 'health', reachable: true } },
      });
      expectObservable(importKeys(inputs, fx)).toBe('abc-d-(ef)-g', { a: 'team/a', b: 'team/f1', c: 'team/f2', d: 'team/f1', e: 'team/f1', f: 'team/f2', g: 'team/a' });
    });
    // Federated imports use no remote namespace of a registered cluster.
    expect(namespaces).toEqual(['c1:r1']);
  });

  it('maps its ConfigMap\'s changes to the import, drops its own write\'s echo, and moves an import switched to Token out of the source index', () => {
    const { fx } = effects();
    const f1 = fed('f1', 'c1');
    const back = imp('f1', 'c1', 'r1', 'sa1', { generation: 2, rv: '2' });
    scheduler().run(({ cold, expectObservable }) => {
      const inputs = cold<KeyInput>('abcde', {
        a: added(f1),
        b: { kind: 'configmap', change: { type: 'updated', key: 'team/f1-federated', before: cm('f1'), after: cm('f1') } },
        c: { kind: 'configmap', change: { type: 'updated', key: 'team/f1-federated', before: cm('f1'), after: cm('f1'), echo: true } },
        d: updated(f1, back),
        e: recordChange(undefined, rec('r', 'c1', '1')),
      });
      expectObservable(importKeys(inputs, fx)).toBe('ab-d-', { a: 'team/f1', b: 'team/f1', d: 'team/f1' });
    });
  });
});
