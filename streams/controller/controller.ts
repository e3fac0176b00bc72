import type { KubeConfig } from '@kubernetes/client-node';
import { EMPTY, firstValueFrom, from, interval, merge, of, timeout, type Observable, type Subscription } from 'rxjs';
import { filter, map, mergeMap } from 'rxjs/operators';
import { API_GROUP, API_VERSION, IMPORT_LABEL, IMPORT_PLURAL } from '../../src/constants.js';
import type { Logger } from '../../src/logger.js';
import { SharedCache, type CacheChange } from '../cache.js';
import { listWatch } from '../watch.js';
import type { BackoffOptions } from '../watch-policy.js';
import { WorkQueue } from '../workqueue.js';
import type { ControllerMetrics } from './metrics.js';
import { projectImport, projectPolicy, projectSecret, type CachedImport, type CachedPolicy, type CachedSecret } from './projections.js';
import { POLICY_PLURAL } from '../../src/consent/policy.js';
import { Reconciler } from './reconciler.js';
import { ClusterRegistry, type RegistryEvent } from './registry.js';
import { flatKey, sameVersion, type RemoteClusterSpec } from './remote-cluster.js';

export interface ControllerOptions {
  local: KubeConfig;
  installNamespace: string;
  concurrency: number;
  refreshRatio: number;
  maxRefreshIntervalMs?: number;
  resyncPeriodMs: number;
  staticClusters: RemoteClusterSpec[];
  logger: Logger;
  metrics: ControllerMetrics;
  remoteBackoff?: BackoffOptions;
  requestTimeoutMs?: number;
  safetyRequeueMs?: number;
}

/** Changes that need a reconcile: not our own status writes (their generation does not move). */
export function importNeedsReconcile(c: CacheChange<CachedImport>): boolean {
  if (!c.before || !c.after) return true;
  const a = c.before;
  const b = c.after;
  return a.generation !== b.generation || a.uid !== b.uid || a.rotation !== b.rotation || a.deleting !== b.deleting;
}

/**
 * The import controller: local watches (imports, generated Secrets), the cluster registry and its
 * remote ServiceAccount watches, all folded into caches; their changes mapped to import keys and
 * fed to a keyed work queue whose reconcile is level-triggered.
 */
export class Controller {
  readonly imports: SharedCache<CachedImport>;
  readonly secrets: SharedCache<CachedSecret>;
  /** The target's ServiceAccountImportPolicies (cluster-scoped, few). */
  readonly policies: SharedCache<CachedPolicy>;
  readonly registry: ClusterRegistry;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  /** importKey by cluster, and by cluster/namespace/name of the remote ServiceAccount. */
  private readonly byCluster = new Map<string, Set<string>>();
  private readonly byRemote = new Map<string, Set<string>>();
  private readonly clusterOf = new Map<string, { cluster: string; remote: string; namespace: string }>();
  private readonly namespaceCounts = new Map<string, Map<string, number>>();
  private subs: Subscription[] = [];

  constructor(private readonly o: ControllerOptions) {
    const log = o.logger;
    this.imports = new SharedCache(
      listWatch({
        kubeConfig: o.local,
        path: `/apis/${API_GROUP}/${API_VERSION}/${IMPORT_PLURAL}`,
        project: projectImport,
        describe: 'local serviceaccountimports',
        logger: log,
      }),
      { keyOf: flatKey, same: sameVersion, describe: 'local serviceaccountimports', logger: log },
    );
    this.secrets = new SharedCache(
      listWatch({
        kubeConfig: o.local,
        path: '/api/v1/secrets',
        labelSelector: IMPORT_LABEL,
        project: projectSecret(o.installNamespace),
        describe: 'local generated secrets',
        logger: log,
      }),
      { keyOf: flatKey, same: sameVersion, describe: 'local generated secrets', logger: log },
    );
    this.policies = new SharedCache(
      listWatch({
        kubeConfig: o.local,
        path: `/apis/${API_GROUP}/${API_VERSION}/${POLICY_PLURAL}`,
        project: projectPolicy,
        describe: 'serviceaccountimportpolicies',
        logger: log,
      }),
      { keyOf: (p) => p.name, same: sameVersion, describe: 'serviceaccountimportpolicies', logger: log },
    );
    this.registry = new ClusterRegistry({
      installNamespace: o.installNamespace,
      imports: this.imports,
      secrets: this.secrets,
      staticClusters: o.staticClusters,
      logger: log,
      backoff: o.remoteBackoff ?? { initialMs: 200, maxMs: 5_000 },
    });
    const reconciler = (this.reconciler = new Reconciler({
      local: o.local,
      imports: this.imports,
      secrets: this.secrets,
      registry: this.registry,
      policies: () => (this.policies.synced ? this.policies.list() : undefined),
      installNamespace: o.installNamespace,
      logger: log,
      metrics: o.metrics,
      refreshRatio: o.refreshRatio,
      maxRefreshIntervalMs: o.maxRefreshIntervalMs,
      safetyRequeueMs: o.safetyRequeueMs ?? 5 * 60_000,
      requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
    }));
    this.queue = new WorkQueue({ reconcile: reconciler.reconcile, concurrency: o.concurrency, metrics: o.metrics.queueHooks(), logger: log });
  }

  /** Starts every watch (also on standby replicas, so a new leader starts warm). */
  start(): void {
    this.subs.push(this.imports.changes$.subscribe((c) => this.index(c)));
    this.imports.start();
    this.secrets.start();
    this.policies.start();
    this.registry.start();
    this.subs.push(this.queue.feed(this.keys$()));
    this.subs.push(
      this.registry.events$.subscribe((e) => {
        if (e.kind === 'health') this.o.metrics.clusterUp.set({ cluster: e.cluster }, e.reachable ? 1 : 0);
        if (e.kind === 'added') this.o.metrics.clusterUp.set({ cluster: e.cluster }, 1);
        if (e.kind === 'removed') this.o.metrics.clusterUp.remove({ cluster: e.cluster });
      }),
    );
  }

  /** Begins reconciling (when this replica leads). */
  startReconciling(): void {
    this.queue.start();
  }

  /** The local caches have listed once. */
  get synced(): boolean {
    return this.imports.synced && this.secrets.synced && this.policies.synced;
  }

  async waitForSync(timeoutMs?: number): Promise<void> {
    await Promise.all([this.imports.waitForSync(timeoutMs), this.secrets.waitForSync(timeoutMs), this.policies.waitForSync(timeoutMs)]);
  }

  /** Open watch connections: 3 local, plus per source cluster (never per import). */
  get watchCount(): number {
    return (this.imports.running ? 1 : 0) + (this.secrets.running ? 1 : 0) + (this.policies.running ? 1 : 0) + this.registry.watchCount;
  }

  async stop(deadlineMs = 10_000): Promise<void> {
    const result = await this.queue.shutdown(deadlineMs);
    if (!result.drained) this.o.logger.warn('shutdown deadline passed with reconciles in flight', { abandoned: result.abandoned });
    // Events still being posted get 2 s more (each POST has its own deadline, which aborts it).
    await firstValueFrom(from(this.reconciler.flushEvents()).pipe(timeout({ first: 2_000, with: () => of(undefined) })), { defaultValue: undefined });
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.registry.stop();
    this.imports.stop();
    this.secrets.stop();
    this.policies.stop();
  }

  private keys$(): Observable<string> {
    const fromImports = this.imports.changes$.pipe(filter(importNeedsReconcile), map((c) => c.key));
    const fromSecrets = this.secrets.changes$.pipe(
      // The echo of this process's own Secret write needs no reconcile: the writer already used it.
      filter((c) => !this.reconciler.isOwnWrite(c)),
      map((c) => c.after ?? c.before!),
      filter((s) => s.importName !== ''),
      map((s) => `${s.namespace}/${s.importName}`),
    );
    const fromRegistry = this.registry.events$.pipe(mergeMap((e) => this.keysFor(e)));
    // A policy change may allow or forbid any import: every import is looked at again (policies are few and rarely change).
    const fromPolicies = this.policies.changes$.pipe(mergeMap(() => this.imports.keys()));
    const resync = this.o.resyncPeriodMs > 0 ? interval(this.o.resyncPeriodMs).pipe(mergeMap(() => this.imports.keys())) : EMPTY;
    return merge(fromImports, fromSecrets, fromRegistry, fromPolicies, resync);
  }

  private keysFor(e: RegistryEvent): string[] {
    if (e.kind === 'serviceaccount') return [...(this.byRemote.get(`${e.cluster}/${e.namespace}/${e.name}`) ?? [])];
    const keys = [...(this.byCluster.get(e.cluster) ?? [])];
    // A cluster that came back must be looked at now, not after its keys' error backoff.
    if (e.kind === 'health' || e.kind === 'added' || e.kind === 'changed' || e.kind === 'grants') keys.forEach((k) => this.queue.forget(k));
    return keys;
  }

  private index(c: CacheChange<CachedImport>): void {
    const old = this.clusterOf.get(c.key);
    if (old) {
      this.byCluster.get(old.cluster)?.delete(c.key);
      this.byRemote.get(old.remote)?.delete(c.key);
      this.countNamespace(old.cluster, old.namespace, -1);
      this.clusterOf.delete(c.key);
    }
    if (c.after && !c.after.deleting) {
      const s = c.after.sai.spec;
      const entry = { cluster: s.clusterName, remote: `${s.clusterName}/${s.namespace}/${s.name}`, namespace: s.namespace };
      this.clusterOf.set(c.key, entry);
      add(this.byCluster, entry.cluster, c.key);
      add(this.byRemote, entry.remote, c.key);
      this.countNamespace(entry.cluster, entry.namespace, +1);
    }
  }

  /** Tells the registry the remote namespaces in use, when a namespace gains its first or loses its last import. */
  private countNamespace(cluster: string, namespace: string, delta: 1 | -1): void {
    let counts = this.namespaceCounts.get(cluster);
    if (!counts) this.namespaceCounts.set(cluster, (counts = new Map()));
    const n = (counts.get(namespace) ?? 0) + delta;
    if (n > 0) counts.set(namespace, n);
    else counts.delete(namespace);
    if ((delta === 1 && n === 1) || n === 0) this.registry.setNamespaces(cluster, new Set(counts.keys()));
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}
