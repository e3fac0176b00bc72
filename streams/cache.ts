import { BehaviorSubject, Subject, concat, defer, filter, firstValueFrom, from, timeout, type Observable, type Subscription } from 'rxjs';
import type { Logger } from '../src/logger.js';
import type { WatchEvent } from './watch.js';

/** One change to the cache: `before` absent for an add, `after` absent for a delete. */
export interface CacheChange<T> {
  type: 'added' | 'updated' | 'deleted';
  key: string;
  before?: T;
  after?: T;
  /**
   * The watch delivering a write this process recorded with `SharedCache.recordWrite`: readers
   * already saw its content, so it needs no reaction of its own.
   */
  echo?: true;
}

type KeyOf<T> = (item: T) => string;
/** The object's resourceVersion ('' when it has none). */
type VersionOf<T> = (item: T) => string;
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

/** Reads `metadata.resourceVersion`, or a projection's own `resourceVersion` field. */
function defaultVersionOf<T>(item: T): string {
  const o = item as { metadata?: { resourceVersion?: unknown }; resourceVersion?: unknown } | null;
  const rv = o?.metadata?.resourceVersion ?? o?.resourceVersion;
  return typeof rv === 'string' ? rv : '';
}

interface SharedCacheOptions<T> {
  keyOf: KeyOf<T>;
  same?: SameVersion<T>;
  /** The object's resourceVersion, for read-your-writes (defaults to `defaultVersionOf`). */
  versionOf?: VersionOf<T>;
  /** Names the cache in logs, e.g. `"cluster1 secrets"`. */
  describe?: string;
  logger?: Logger;
}

/** A write this process made that the watch has not delivered yet. */
interface PendingWrite<T> {
  /** The version the cache held when the write was made ('' for none). */
  previousVersion: string;
  written: T;
}

/**
 * A folded, shared view of one list+watch source: one subscription to the source however many
 * consumers read it. `start()` subscribes, `stop()` tears the watch down (and clears the cache).
 *
 * Read-your-writes: a writer records what the API server answered (`recordWrite`), and every
 * reader sees it until the watch catches up; the watch's delivery of that very version is then
 * marked as an `echo`. A version the writer did not make (someone else wrote, or the object went
 * away) drops the record: the watch is the truth again.
 */
export class SharedCache<T> {
  private readonly store = new Map<string, T>();
  private readonly pending = new Map<string, PendingWrite<T>>();
  private readonly versionOf: VersionOf<T>;
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
    this.versionOf = opts.versionOf ?? defaultVersionOf;
  }

  /**
   * Records an object this process just wrote (the API server's answer): `get` and `list` return
   * it until the watch delivers that version or a newer one, so the next reader does not act on
   * the stale cached object. An answer without a resourceVersion is not recorded.
   */
  recordWrite(written: T): void {
    const key = this.opts.keyOf(written);
    const version = this.versionOf(written);
    if (version === '') return;
    const cached = this.store.get(key);
    if (cached !== undefined && this.versionOf(cached) === version) return; // the watch was faster
    const previousVersion = this.pending.get(key)?.previousVersion ?? (cached === undefined ? '' : this.versionOf(cached));
    this.pending.set(key, { previousVersion, written });
  }

  /** Writes recorded and not yet delivered by the watch (for metrics and tests). */
  get pendingWrites(): number {
    return this.pending.size;
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
    this.pending.clear();
    this.syncedSubject.next(false);
  }

  get running(): boolean {
    return this.subscription !== undefined;
  }

  get synced(): boolean {
    return this.syncedSubject.value;
  }

  get(key: string): T | undefined {
    return this.pending.get(key)?.written ?? this.store.get(key);
  }

  list(): T[] {
    return this.keys().map((k) => this.get(k)!);
  }

  keys(): string[] {
    const keys = [...this.store.keys()];
    for (const k of this.pending.keys()) if (!this.store.has(k)) keys.push(k);
    return keys;
  }

  get size(): number {
    return this.keys().length;
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
    // Recorded writes the watch has now overtaken are dropped before anyone hears of the change.
    const echoes = new Set<string>();
    for (const change of changes) {
      const mine = this.pending.get(change.key);
      if (!mine) continue;
      const now = change.after && this.versionOf(change.after);
      if (now === this.versionOf(mine.written)) echoes.add(change.key);
      if (now !== mine.previousVersion) this.pending.delete(change.key);
    }
    for (const change of changes) this.changeSubject.next(echoes.has(change.key) ? { ...change, echo: true } : change);
    // Synced only after the initial adds went out, as informers' HasSynced.
    if (event.type === 'RESET' && !this.syncedSubject.value) this.syncedSubject.next(true);
  }
}
