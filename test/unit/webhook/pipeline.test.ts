import { describe, expect, it } from '@jest/globals';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import { IMPORT_ANNOTATION } from '../../../src/constants.js';
import { AdmissionPipeline } from '../../../streams/webhook/pipeline.js';
import { ImportCache, type ImportLookup } from '../../../streams/webhook/lookup.js';
import { namespacedKey, SharedCache } from '../../../streams/cache.js';
import type { WatchEvent } from '../../../streams/watch.js';
import { Subject } from 'rxjs';
import { decidedAtOnce, silentLogger, StaticImportLookup } from './doubles.js';
import { importObject } from './fixtures.js';

function review(uid: string, annotation: string) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'ns',
      object: { metadata: { name: uid, annotations: { [IMPORT_ANNOTATION]: annotation } }, spec: { containers: [{ name: 'c' }] } },
    },
  };
}

class ControlledLookup implements ImportLookup {
  pending: { name: string; resolve: (s: ServiceAccountImport | undefined) => void; reject: (e: Error) => void }[] = [];
  active = 0;
  maxActive = 0;
  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return new Promise((resolve, reject) => {
      this.pending.push({
        name,
        resolve: (s) => {
          this.active--;
          resolve(s);
        },
        reject: (e) => {
          this.active--;
          reject(e);
        },
      });
    });
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('AdmissionPipeline', () => {
  it('answers at once what needs no API call — even while lookups are queued', async () => {
    const slow = new ControlledLookup();
    const cached = new StaticImportLookup([importObject('ns', 'imp', true)]);
    // Known to the cache: "imp"; anything else goes to the slow lookup.
    const lookup: ImportLookup = {
      get: (ns, name) => slow.get(ns, name),
      known: (ns, name) => (name === 'imp' ? cached.known(ns, name) : undefined),
    };
    const p = new AdmissionPipeline({ lookup, log: silentLogger(), concurrency: 1, timeoutMs: 10_000 });
    const waiting = [p.admit(review('w1', 'other')), p.admit(review('w2', 'other'))];
    expect(await decidedAtOnce(waiting[1]!)).toBe('pending');
    expect(slow.pending).toHaveLength(1); // the second waits behind the concurrency limit

    expect(await decidedAtOnce(p.admit(review('n', 'imp')))).toMatchObject({ kind: 'response', mutated: true, response: { uid: 'n', allowed: true } });
    expect(await decidedAtOnce(p.admit({ kind: 'nope' }))).toMatchObject({ kind: 'bad-request' });
    expect(await decidedAtOnce(p.admit(review('u', '')))).toMatchObject({ kind: 'response', mutated: false, response: { uid: 'u', allowed: true } });

    const closed = p.close();
    while (slow.pending.length > 0) {
      slow.pending.shift()!.resolve(undefined);
      await tick();
    }
    const answers = await Promise.all(waiting);
    expect(answers.map((a) => (a.kind === 'response' ? [a.response.uid, a.response.allowed] : a.kind))).toEqual([['w1', false], ['w2', false]]);
    await closed;
  });

  it('bounds concurrency, answers each caller with its own uid, and drains on close', async () => {
    const lookup = new ControlledLookup();
    const p = new AdmissionPipeline({ lookup, log: silentLogger(), concurrency: 2, timeoutMs: 10_000 });
    const answers = ['a', 'b', 'c', 'd'].map((uid) => p.admit(review(uid, 'imp')));
    await tick();
    expect(lookup.pending).toHaveLength(2);
    const closed = p.close();
    while (lookup.pending.length > 0) {
      lookup.pending.shift()!.resolve(importObject('ns', 'imp', true));
      await tick();
    }
    const out = await Promise.all(answers);
    expect(out.map((o) => (o.kind === 'response' ? [o.response.uid, o.response.allowed, o.mutated] : o))).toEqual([
      ['a', true, true],
      ['b', true, true],
      ['c', true, true],
      ['d', true, true],
    ]);
    expect(lookup.maxActive).toBe(2);
    await closed;
    const late = await p.admit(review('e', 'imp'));
    expect(late.kind === 'response' && late.response.status).toMatchObject({ code: 503, message: 'the webhook is shutting down, retry' });
  });

  it('denies (not a 5xx) when a lookup fails or takes longer than the deadline', async () => {
    const lookup = new ControlledLookup();
    const p = new AdmissionPipeline({ lookup, log: silentLogger(), timeoutMs: 50 });
    const failed = p.admit(review('f', 'imp'));
    await tick();
    lookup.pending.shift()!.reject(new Error('connection refused'));
    expect(await failed).toMatchObject({
      kind: 'response',
      response: { uid: 'f', allowed: false, status: { code: 503, message: 'cannot look up service account imports "imp" in namespace "ns": connection refused' } },
    });
    const slow = await p.admit(review('s', 'imp'));
    expect(slow).toMatchObject({ kind: 'response', response: { uid: 's', allowed: false, status: { code: 504 } } });
    expect(slow.kind === 'response' && slow.response.status?.message).toContain('timed out after 50 ms');
    await p.close();
  });
});

describe('ImportCache', () => {
  it('serves from the folded watch events and falls back to a GET on a miss', async () => {
    const events = new Subject<WatchEvent<ServiceAccountImport>>();
    const fetched: string[] = [];
    const store = new SharedCache(events, { keyOf: namespacedKey }).start();
    const cache = new ImportCache(store, (ns, name) => {
      fetched.push(`${ns}/${name}`);
      return Promise.resolve(name === 'fresh' ? importObject(ns, name, undefined) : undefined);
    });
    expect(cache.synced).toBe(false);
    events.next({ type: 'RESET', items: [importObject('ns', 'a', true)], resourceVersion: '1' });
    expect(cache.synced).toBe(true);
    events.next({ type: 'ADDED', object: importObject('ns', 'b', false) });
    expect((await cache.get('ns', 'a'))?.metadata.name).toBe('a');
    expect((await cache.get('ns', 'b'))?.metadata.name).toBe('b');
    events.next({ type: 'DELETED', object: importObject('ns', 'a', true) });
    expect(await cache.get('ns', 'a')).toBeUndefined();
    expect((await cache.get('ns', 'fresh'))?.metadata.name).toBe('fresh');
    expect(fetched).toEqual(['ns/a', 'ns/fresh']);
    events.next({ type: 'RESET', items: [], resourceVersion: '2' });
    expect(store.size).toBe(0);
    store.stop();
  });
});
