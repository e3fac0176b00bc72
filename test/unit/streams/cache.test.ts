import { describe, expect, it } from '@jest/globals';
import { Subject, defer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { defer as deferred, mergeMap, type OperatorFunction } from 'rxjs';
import { SharedCache, applyWatchEvent, namespacedKey, type CacheChange } from '../../../streams/cache.js';
import type { WatchEvent } from '../../../streams/watch.js';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion: string };
}

const obj = (name: string, rv: string, namespace = 'ns'): Obj => ({ metadata: { name, namespace, resourceVersion: rv } });
const reset = (...items: Obj[]): WatchEvent<Obj> => ({ type: 'RESET', items, resourceVersion: '100' });
const ev = (type: 'ADDED' | 'MODIFIED' | 'DELETED', o: Obj): WatchEvent<Obj> => ({ type, object: o });

const added = (o: Obj): CacheChange<Obj> => ({ type: 'added', key: namespacedKey(o), after: o });
const updated = (b: Obj, a: Obj): CacheChange<Obj> => ({ type: 'updated', key: namespacedKey(a), before: b, after: a });
const deleted = (o: Obj): CacheChange<Obj> => ({ type: 'deleted', key: namespacedKey(o), before: o });

const x1 = obj('x', '1');
const x2 = obj('x', '2');
const y1 = obj('y', '1');
const z1 = obj('z', '1');

/** The operator form of the fold: watch events in, cache changes out (one store per subscription). */
function cacheChanges<T>(keyOf: (item: T) => string, same?: (before: T, after: T) => boolean): OperatorFunction<WatchEvent<T>, CacheChange<T>> {
  return (source) =>
    deferred(() => {
      const store = new Map<string, T>();
      return source.pipe(mergeMap((event) => applyWatchEvent(store, event, keyOf, same)));
    });
}

function scheduler() {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('cacheChanges (marbles)', () => {
  it('turns a RESET into adds, then follows watch events', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('a-----b-----c', { a: reset(x1, y1), b: ev('MODIFIED', x2), c: ev('DELETED', y1) });
      expectObservable(events.pipe(cacheChanges<Obj>(namespacedKey))).toBe('(ab)--c-----d', {
        a: added(x1),
        b: added(y1),
        c: updated(x1, x2),
        d: deleted(y1),
      });
    });
  });

  it('diffs a later RESET against the cache: vanished keys become deletions, unchanged keys stay silent', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('a-----b', { a: reset(x1, y1, z1), b: reset(x2, z1) });
      expectObservable(events.pipe(cacheChanges<Obj>(namespacedKey))).toBe('(abc)-(de)', {
        a: added(x1),
        b: added(y1),
        c: added(z1),
        d: deleted(y1),
        e: updated(x1, x2),
      });
    });
  });

  it('ignores same-version updates and deletes of unknown keys', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const events = cold('a-b-c-d', { a: ev('ADDED', x1), b: ev('MODIFIED', obj('x', '1')), c: ev('DELETED', y1), d: ev('ADDED', x2) });
      expectObservable(events.pipe(cacheChanges<Obj>(namespacedKey))).toBe('a-----b', { a: added(x1), b: updated(x1, x2) });
    });
  });

  it('keeps one store per subscription', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const changes = cold('a', { a: ev('ADDED', x1) }).pipe(cacheChanges<Obj>(namespacedKey));
      expectObservable(changes).toBe('a', { a: added(x1) });
      expectObservable(changes).toBe('a', { a: added(x1) });
    });
  });
});

describe('applyWatchEvent', () => {
  it('replaces the store with the RESET set', () => {
    const store = new Map<string, Obj>();
    applyWatchEvent(store, reset(x1, y1), namespacedKey);
    applyWatchEvent(store, reset(z1), namespacedKey);
    expect([...store.keys()]).toEqual(['ns/z']);
  });

  it('compares resource versions, treating objects without one as changed', () => {
    const store = new Map<string, Obj>();
    applyWatchEvent(store, reset(x1), namespacedKey);
    expect(applyWatchEvent(store, ev('MODIFIED', obj('x', '1')), namespacedKey)).toEqual([]);
    expect(applyWatchEvent(store, ev('MODIFIED', x2), namespacedKey)).toEqual([updated(obj('x', '1'), x2)]);
    type Bare = { metadata: { name: string } };
    const bare = new Map<string, Bare>();
    const n1: Bare = { metadata: { name: 'n' } };
    const n2: Bare = { metadata: { name: 'n' } };
    applyWatchEvent(bare, { type: 'ADDED', object: n1 }, namespacedKey);
    expect(applyWatchEvent(bare, { type: 'MODIFIED', object: n2 }, namespacedKey)).toEqual([{ type: 'updated', key: 'n', before: n1, after: n2 }]);
  });

  it('keys cluster-scoped objects by name', () => {
    expect(namespacedKey({ metadata: { name: 'n' } })).toBe('n');
    expect(namespacedKey({ metadata: { name: 'n', namespace: 'a' } })).toBe('a/n');
  });
});

describe('SharedCache', () => {
  it('serves get/list after the first RESET and reports synced only then', async () => {
    const source = new Subject<WatchEvent<Obj>>();
    const cache = new SharedCache<Obj>(source, { keyOf: namespacedKey, describe: 'test objects' });
    const synced: boolean[] = [];
    cache.synced$.subscribe((s) => synced.push(s));
    cache.start();
    const sync = cache.waitForSync(1_000);
    source.next(reset(x1, y1));
    await sync;
    expect(synced).toEqual([false, true]);
    expect(cache.get('ns/x')).toEqual(x1);
    expect(cache.list()).toEqual([x1, y1]);
    expect(cache.keys()).toEqual(['ns/x', 'ns/y']);
    cache.stop();
  });

  it('announces synced only after the initial adds went out', () => {
    const source = new Subject<WatchEvent<Obj>>();
    const cache = new SharedCache<Obj>(source, { keyOf: namespacedKey }).start();
    const seen: string[] = [];
    cache.changes$.subscribe((c) => seen.push(`${c.type} ${c.key}`));
    cache.synced$.subscribe((s) => seen.push(`synced=${s}`));
    source.next(reset(x1));
    expect(seen).toEqual(['synced=false', 'added ns/x', 'synced=true']);
    cache.stop();
  });

  it('subscribes to its source once however many consumers read it, and unsubscribes on stop', () => {
    const source = new Subject<WatchEvent<Obj>>();
    let subscriptions = 0;
    const cache = new SharedCache<Obj>(defer(() => (subscriptions++, source)), { keyOf: namespacedKey });
    cache.start();
    cache.start();
    cache.changes$.subscribe();
    cache.changes$.subscribe();
    cache.synced$.subscribe();
    expect(subscriptions).toBe(1);
    source.next(reset(x1));
    cache.stop();
    expect(source.observed).toBe(false);
    expect(cache.size).toBe(0);
    expect(cache.synced).toBe(false);
  });

  it('gives a late consumer the existing objects, then live changes', () => {
    const source = new Subject<WatchEvent<Obj>>();
    const cache = new SharedCache<Obj>(source, { keyOf: namespacedKey }).start();
    source.next(reset(x1, y1));
    const seen: CacheChange<Obj>[] = [];
    cache.changesWithExisting$().subscribe((c) => seen.push(c));
    source.next(ev('DELETED', y1));
    expect(seen).toEqual([added(x1), added(y1), deleted(y1)]);
    cache.stop();
  });

  it('rejects waitForSync after its timeout, naming the cache', async () => {
    const cache = new SharedCache<Obj>(new Subject<WatchEvent<Obj>>(), { keyOf: namespacedKey, describe: 'cluster9 secrets' }).start();
    await expect(cache.waitForSync(10)).rejects.toThrow('cluster9 secrets did not sync within 10 ms');
    cache.stop();
  });

  describe('read-your-writes', () => {
    const setup = () => {
      const source = new Subject<WatchEvent<Obj>>();
      const cache = new SharedCache<Obj>(source, { keyOf: namespacedKey }).start();
      const seen: CacheChange<Obj>[] = [];
      cache.changes$.subscribe((c) => seen.push(c));
      source.next(reset(x1));
      seen.length = 0;
      return { source, cache, seen };
    };

    it('serves a recorded write to every reader until the watch delivers it, then marks that delivery as an echo', () => {
      const { source, cache, seen } = setup();
      cache.recordWrite(x2);
      expect(cache.get('ns/x')).toEqual(x2);
      expect(cache.list()).toEqual([x2]);
      expect(cache.pendingWrites).toBe(1);
      source.next(ev('MODIFIED', x2));
      expect(seen).toEqual([{ ...updated(x1, x2), echo: true }]);
      expect(cache.pendingWrites).toBe(0);
      expect(cache.get('ns/x')).toEqual(x2);
      cache.stop();
    });

    it('serves a created object before the watch has it, in get, keys and list', () => {
      const { source, cache, seen } = setup();
      cache.recordWrite(y1);
      expect(cache.keys()).toEqual(['ns/x', 'ns/y']);
      expect(cache.size).toBe(2);
      source.next(ev('ADDED', y1));
      expect(seen).toEqual([{ ...added(y1), echo: true }]);
      cache.stop();
    });

    it("drops the record when the watch shows someone else's version, and does not mark it as an echo", () => {
      const { source, cache, seen } = setup();
      const theirs = obj('x', '3');
      cache.recordWrite(obj('x', '4'));
      source.next(ev('MODIFIED', theirs));
      expect(cache.get('ns/x')).toEqual(theirs);
      expect(cache.pendingWrites).toBe(0);
      source.next(ev('MODIFIED', obj('x', '4')));
      expect(seen.map((c) => c.echo)).toEqual([undefined, undefined]);
      cache.stop();
    });

    it('drops the record when the object is deleted or the cache stops; ignores answers without a version or already seen', () => {
      const { source, cache } = setup();
      cache.recordWrite(x2);
      source.next(ev('DELETED', x1));
      expect(cache.get('ns/x')).toBeUndefined();
      cache.recordWrite({ metadata: { name: 'v', namespace: 'ns', resourceVersion: '' } });
      expect(cache.pendingWrites).toBe(0);
      source.next(ev('ADDED', y1));
      cache.recordWrite(y1);
      expect(cache.pendingWrites).toBe(0);
      cache.recordWrite(obj('y', '5'));
      cache.stop();
      expect(cache.pendingWrites).toBe(0);
    });

    it('keeps the version it was written over across several writes, so a relist of that version changes nothing', () => {
      const { source, cache, seen } = setup();
      cache.recordWrite(x2);
      cache.recordWrite(obj('x', '3'));
      source.next(reset(x1));
      expect(cache.get('ns/x')).toEqual(obj('x', '3'));
      expect(seen).toEqual([]);
      source.next(ev('MODIFIED', x2));
      expect(cache.pendingWrites).toBe(0);
      cache.stop();
    });
  });

});
