// The controller's key pipeline: every input (import and Secret cache changes, cluster registry
// events, policy changes, the resync tick) in one ordered stream, folded into an index of imports
// by cluster and by remote ServiceAccount, out as the import keys to reconcile. The index is
// updated by the same fold that reads it, so an import change is indexed before any later registry
// event is mapped: the order is the stream's, not the order in which subscribers happened to
// subscribe.
import { asyncScheduler, exhaustMap, map, mergeMap, take, timer, type Observable, type SchedulerLike } from 'rxjs';
import type { CacheChange } from '../cache.js';
import { isFederatedSpec } from '../../src/api/import.js';
import type { CachedConfigMap, CachedFederatedRecord, CachedImport, CachedSecret } from './projections.js';
import type { RegistryEvent } from './registry.js';

export type KeyInput =
  | { kind: 'import'; change: CacheChange<CachedImport> }
  | { kind: 'secret'; change: CacheChange<CachedSecret> }
  /** A federated import's generated ConfigMap. */
  | { kind: 'configmap'; change: CacheChange<CachedConfigMap> }
  /** A federated source record (ADR 0022). */
  | { kind: 'record'; change: CacheChange<CachedFederatedRecord> }
  | { kind: 'registry'; event: RegistryEvent }
  /** A policy changed, or the resync tick: every import is looked at again. */
  | { kind: 'all'; keys: string[] };

interface KeyEffects {
  /** A key must be retried now, not after its error backoff (its cluster came back or changed). */
  forget(key: string): void;
  /** The remote namespaces in use by a cluster's imports changed. */
  namespacesChanged(cluster: string, namespaces: Set<string>): void;
}

/** Whether an import change needs a reconcile (status-only updates, e.g. our own, do not). */
function importNeedsReconcile(c: CacheChange<CachedImport>): boolean {
  if (!c.before || !c.after) return true;
  const a = c.before;
  const b = c.after;
  return a.generation !== b.generation || a.uid !== b.uid || a.rotation !== b.rotation || a.deleting !== b.deleting;
}

type Entry = { federated: false; cluster: string; remote: string; namespace: string } | { federated: true; source: string };

/**
 * Token imports by cluster and by `cluster/namespace/name` of their remote ServiceAccount, and the
 * remote namespaces in use; federated imports by the source they name (they use no registered
 * cluster).
 */
class ImportIndex {
  private readonly byCluster = new Map<string, Set<string>>();
  private readonly byRemote = new Map<string, Set<string>>();
  private readonly bySource = new Map<string, Set<string>>();
  private readonly entries = new Map<string, Entry>();
  private readonly namespaceCounts = new Map<string, Map<string, number>>();

  /** Folds one import change; returns the clusters whose set of remote namespaces changed. */
  apply(c: CacheChange<CachedImport>): Map<string, Set<string>> {
    const changed = new Map<string, Set<string>>();
    const old = this.entries.get(c.key);
    if (old?.federated) this.bySource.get(old.source)?.delete(c.key);
    else if (old) {
      this.byCluster.get(old.cluster)?.delete(c.key);
      this.byRemote.get(old.remote)?.delete(c.key);
      this.count(old.cluster, old.namespace, -1, changed);
    }
    this.entries.delete(c.key);
    if (c.after && !c.after.deleting) {
      const s = c.after.sai.spec;
      if (isFederatedSpec(s)) {
        this.entries.set(c.key, { federated: true, source: s.clusterName });
        add(this.bySource, s.clusterName, c.key);
        return changed;
      }
      const entry = { federated: false as const, cluster: s.clusterName, remote: `${s.clusterName}/${s.namespace}/${s.name}`, namespace: s.namespace };
      this.entries.set(c.key, entry);
      add(this.byCluster, entry.cluster, c.key);
      add(this.byRemote, entry.remote, c.key);
      this.count(entry.cluster, entry.namespace, +1, changed);
    }
    return changed;
  }

  keysOfSource(source: string): string[] {
    return [...(this.bySource.get(source) ?? [])];
  }

  keysOfCluster(cluster: string): string[] {
    return [...(this.byCluster.get(cluster) ?? [])];
  }

  keysOfRemote(cluster: string, namespace: string, name: string): string[] {
    return [...(this.byRemote.get(`${cluster}/${namespace}/${name}`) ?? [])];
  }

  namespacesOf(cluster: string): Set<string> {
    return new Set(this.namespaceCounts.get(cluster)?.keys() ?? []);
  }

  private count(cluster: string, namespace: string, delta: 1 | -1, changed: Map<string, Set<string>>): void {
    let counts = this.namespaceCounts.get(cluster);
    if (!counts) this.namespaceCounts.set(cluster, (counts = new Map()));
    const n = (counts.get(namespace) ?? 0) + delta;
    if (n > 0) counts.set(namespace, n);
    else counts.delete(namespace);
    // Only a namespace's first import or its last one changes the set.
    if ((delta === 1 && n === 1) || n === 0) changed.set(cluster, new Set(counts.keys()));
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

/** The keys one input asks to reconcile, after folding it into `index`. */
function keysOf(input: KeyInput, index: ImportIndex, fx: KeyEffects): string[] {
  switch (input.kind) {
    case 'import': {
      for (const [cluster, namespaces] of index.apply(input.change)) fx.namespacesChanged(cluster, namespaces);
      return importNeedsReconcile(input.change) ? [input.change.key] : [];
    }
    case 'secret':
    case 'configmap': {
      // The watch echo of this process's own write: its reconcile already saw it (read-your-writes).
      if (input.change.echo) return [];
      const s = input.change.after ?? input.change.before!;
      return s.importName === '' ? [] : [`${s.namespace}/${s.importName}`];
    }
    case 'record': {
      // A record relabelled from one source to another concerns the imports of both.
      const sources = new Set([input.change.before?.source, input.change.after?.source].filter((s): s is string => s !== undefined && s !== ''));
      return [...sources].flatMap((s) => index.keysOfSource(s));
    }
    case 'registry': {
      const e = input.event;
      if (e.kind === 'serviceaccount') return index.keysOfRemote(e.cluster, e.namespace, e.name);
      const keys = index.keysOfCluster(e.cluster);
      // A cluster that came back must be looked at now, not after its keys' error backoff.
      if (e.kind === 'health' || e.kind === 'added' || e.kind === 'changed' || e.kind === 'grants') keys.forEach((k) => fx.forget(k));
      return keys;
    }
    case 'all':
      return input.keys;
  }
}

/** The key pipeline: one ordered stream of inputs in, import keys out (one index per subscription). */
export function importKeys(inputs$: Observable<KeyInput>, fx: KeyEffects, index: ImportIndex = new ImportIndex()): Observable<string> {
  return inputs$.pipe(mergeMap((input) => keysOf(input, index, fx)));
}

/** How fast a resync hands out its keys: 50 every half second (3,300 imports in 33 s). */
const RESYNC_BATCH = { keys: 50, everyMs: 500 } as const;

/**
 * The periodic resync as key batches: every `periodMs`, the keys of that moment handed out
 * `RESYNC_BATCH.keys` at a time, one batch every `RESYNC_BATCH.everyMs`. All at once, a fleet's
 * thousands of keys queued in one instant, every 10 minutes: healthy imports created then waited
 * behind them, and the burst of reconciles raised the process's heap for good (bench:fleet's
 * soak, a one-time step of 13–18 MiB). A resync still handing out keys when the next one is due
 * lets it pass (exhaustMap).
 */
export function resyncBatches(periodMs: number, keysNow: () => string[], scheduler: SchedulerLike = asyncScheduler): Observable<string[]> {
  return timer(periodMs, periodMs, scheduler).pipe(
    exhaustMap(() => {
      const keys = keysNow();
      const batches = Math.ceil(keys.length / RESYNC_BATCH.keys);
      return timer(0, RESYNC_BATCH.everyMs, scheduler).pipe(
        take(batches),
        map((i) => keys.slice(i * RESYNC_BATCH.keys, (i + 1) * RESYNC_BATCH.keys)),
      );
    }),
  );
}
