import { BehaviorSubject, Subject, concat, defer, filter, firstValueFrom, from, timeout, type Observable, type Subscription } from 'rxjs';
import type { Logger } from '../src/logger.js';
import type { WatchEvent } from './watch.js';

/** One change to the cache: `before` absent for an add, `after` absent for a delete. */
export interface CacheChange<T> {
  type: 'added' | 'updated' | 'deleted';
  key: string;
  before?: T;
  after?: T;
}

type KeyOf<T> = (item: T) => string;
/** True when `after` is the same version as `before` (no change to report). */
type SameVersion<T> = (before: T, after: T) => boolean;

/** `namespace/name` (or `name` for cluster-scoped objects), the usual cache key. */
export function namespacedKey(item: { metadata?: { name?: string; namespace?: string } }): string {
  const m = item.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ''}` : (m.name ?? '');
}

/** Compares `metadata.resourceVersion`; objects without one always count as changed. */
function sameResourceVersion<T>(before: T, after: T): boolean {
  const rv = (x: T) => (x as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
  const a = rv(before);
  return typeof a === 'string' && a === rv(after);
}

/**
 * Folds one watch event into `store` and returns what changed. A RESET replaces the whole set:
 * keys missing from it are deletions (a watch gap must not leave ghosts), changed versions are
 * updates, new keys are adds.
 */
export function applyWatchEvent<T>(store: Map<string, T>, event: WatchEvent<T>, keyOf: KeyOf<T>, same: SameVersion<T> = sameResourceVersion): CacheChange<T>[] {
  if (event.type === 'RESET') return applyReset(store, event.items, keyOf, same);
  const key = keyOf(event.object);
  const before = store.get(key);
  if (event.type === 'DELETED') {
    if (before === undefined) return [];
    store.delete(key);
    return [{ type: 'deleted', key, before }];
  }
  store.set(key, event.object);
  if (before === undefined) return [{ type: 'added', key, after: event.object }];
  if (same(before, event.object)) return [];
  return [{ type: 'updated', key, before, after: event.object }];
}

function applyReset<T>(store: Map<string, T>, items: T[], keyOf: KeyOf<T>, same: SameVersion<T>): CacheChange<T>[] {
  const changes: CacheChange<T>[] = [];
  const next = new Map<string, T>();
  for (const item of items) next.set(keyOf(item), item);
  for (const [key, before] of store) {
    if (!next.has(key)) changes.push({ type: 'deleted', key, before });
  }
  for (const [key, after] of next) {
    const before = store.get(key);
    if (before === undefined) changes.push({ type: 'added', key, after });
    else if (!same(before, after)) changes.push({ type: 'updated', key, before, after });
  }
  store.clear();
  for (const [key, item] of next) store.set(key, item);
  return changes;
}

interface SharedCacheOptions<T> {
  keyOf: KeyOf<T>;
  same?: SameVersion<T>;
  /** Names the cache in logs, e.g. `"cluster1 secrets"`. */
  describe?: string;
  logger?: Logger;
}

/**
 * A folded, shared view of one list+watch source: one subscription to the source however many
 * consumers read it. `start()` subscribes, `stop()` tears the watch down (and clears the cache).
 */
export class SharedCache<T> {
  private readonly store = new Map<string, T>();
  private readonly syncedSubject = new BehaviorSubject<boolean>(false);
  private readonly changeSubject = new Subject<CacheChange<T>>();
  private subscription: Subscription | undefined;
  private readonly same: SameVersion<T>;

  /** False until the first RESET has been folded, then true (until `stop`). */
  readonly synced$: Observable<boolean> = this.syncedSubject.asObservable();
  /** Every change from now on (hot). Use `changesWithExisting$` to also get what is there already. */
  readonly changes$: Observable<CacheChange<T>> = this.changeSubject.asObservable();

  constructor(
    private readonly events$: Observable<WatchEvent<T>>,
    private readonly opts: SharedCacheOptions<T>,
  ) {
    this.same = opts.same ?? sameResourceVersion;
  }

  /** Subscribes to the source (idempotent). */
  start(): this {
    if (this.subscription) return this;
    this.subscription = this.events$.subscribe({
      next: (event) => this.fold(event),
      error: (e: unknown) => this.opts.logger?.error('cache source failed', { source: this.opts.describe, error: e }),
    });
    return this;
  }

  /** Unsubscribes from the source (aborting its watch) and forgets every object. */
  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.store.clear();
    this.syncedSubject.next(false);
  }

  get running(): boolean {
    return this.subscription !== undefined;
  }

  get synced(): boolean {
    return this.syncedSubject.value;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  get size(): number {
    return this.store.size;
  }

  /** Synthetic adds for every cached object, then live changes: what a late consumer needs. */
  changesWithExisting$(): Observable<CacheChange<T>> {
    return defer(() =>
      concat(
        from([...this.store].map(([key, after]): CacheChange<T> => ({ type: 'added', key, after }))),
        this.changes$,
      ),
    );
  }

  /** Resolves once the first list has been folded; rejects after `timeoutMs` if given. */
  waitForSync(timeoutMs?: number): Promise<void> {
    const synced = this.synced$.pipe(filter(Boolean));
    const waited = timeoutMs === undefined ? synced : synced.pipe(timeout({ first: timeoutMs, with: () => {
      throw new Error(`${this.opts.describe ?? 'cache'} did not sync within ${timeoutMs} ms`);
    } }));
    return firstValueFrom(waited).then(() => undefined);
  }

  private fold(event: WatchEvent<T>): void {
    const changes = applyWatchEvent(this.store, event, this.opts.keyOf, this.same);
    for (const change of changes) this.changeSubject.next(change);
    // Synced only after the initial adds went out, as informers' HasSynced.
    if (event.type === 'RESET' && !this.syncedSubject.value) this.syncedSubject.next(true);
  }
}
