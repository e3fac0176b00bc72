import type { KubeConfig } from '@kubernetes/client-node';
import { EMPTY, firstValueFrom, from, merge, of, timeout, type Observable, type Subscription } from 'rxjs';
import { map } from 'rxjs/operators';
import { API_GROUP, API_VERSION, FEDERATED_SOURCE_LABEL, IMPORT_LABEL, IMPORT_PLURAL } from '../../src/constants.js';
import type { Logger } from '../../src/logger.js';
import { SharedCache } from '../cache.js';
import { listWatch } from '../watch.js';
import type { BackoffOptions } from '../watch-policy.js';
import { WorkQueue } from '../workqueue.js';
import type { ControllerMetrics } from './metrics.js';
import { projectConfigMap, projectFederatedRecord, projectImport, projectPolicy, projectSecret, type CachedConfigMap, type CachedFederatedRecord, type CachedImport, type CachedPolicy, type CachedSecret } from './projections.js';
import { POLICY_PLURAL } from '../../src/consent/policy.js';
import { Reconciler } from './reconciler.js';
import { kubeImportEffects } from './effects.js';
import { importKeys, resyncBatches, type KeyInput } from './keys.js';
import { ClusterRegistry } from './registry.js';
import { flatKey, sameVersion, type RemoteClusterSpec } from './remote-cluster.js';

interface ControllerOptions {
  local: KubeConfig;
  installNamespace: string;
  concurrency: number;
  /** Maximum reconciles of one source cluster's imports at once (default: `concurrency`). */
  clusterConcurrency?: number;
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

/** A reconcile this long is waiting on a source: healthy ones take tens of milliseconds. */
const SLOW_RECONCILE_MS = 1_000;

/**
 * The import controller: local watches (imports, generated Secrets), the cluster registry and its
 * remote ServiceAccount watches, all folded into caches; their changes mapped to import keys and
 * fed to a keyed work queue whose reconcile is level-triggered.
 */
export class Controller {
  readonly imports: SharedCache<CachedImport>;
  readonly secrets: SharedCache<CachedSecret>;
  /** Federated imports' generated ConfigMaps. */
  readonly configMaps: SharedCache<CachedConfigMap>;
  /** Federated source records (ConfigMaps labelled with FEDERATED_SOURCE_LABEL in the install namespace). */
  readonly records: SharedCache<CachedFederatedRecord>;
  /** The target's ServiceAccountImportPolicies (cluster-scoped, few). */
  readonly policies: SharedCache<CachedPolicy>;
  readonly registry: ClusterRegistry;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private subs: Subscription[] = [];

  constructor(private readonly o: ControllerOptions) {
    const log = o.logger;
    const local = <T extends { resourceVersion: string }>(describe: string, path: string, project: (raw: unknown) => T, opts: { labelSelector?: string; keyOf?: (item: T) => string } = {}) =>
      new SharedCache(
        listWatch({ kubeConfig: o.local, path, ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}), project, describe, logger: log }),
        { keyOf: opts.keyOf ?? ((item: T) => flatKey(item as T & { namespace: string; name: string })), same: sameVersion, describe, logger: log },
      );
    this.imports = local('local serviceaccountimports', `/apis/${API_GROUP}/${API_VERSION}/${IMPORT_PLURAL}`, projectImport);
    this.secrets = local('local generated secrets', '/api/v1/secrets', projectSecret(o.installNamespace), { labelSelector: IMPORT_LABEL });
    // Federated imports' ConfigMaps (label selector, like the Secrets) and the federated source
    // records (the install namespace only): two watches, whatever the number of imports.
    this.configMaps = local('local federated import configmaps', '/api/v1/configmaps', projectConfigMap, { labelSelector: IMPORT_LABEL });
    this.records = local('federated source records', `/api/v1/namespaces/${o.installNamespace}/configmaps`, projectFederatedRecord, { labelSelector: FEDERATED_SOURCE_LABEL });
    this.policies = local('serviceaccountimportpolicies', `/apis/${API_GROUP}/${API_VERSION}/${POLICY_PLURAL}`, projectPolicy, { keyOf: (p) => p.name });
    this.registry = new ClusterRegistry({
      installNamespace: o.installNamespace,
      imports: this.imports,
      secrets: this.secrets,
      staticClusters: o.staticClusters,
      logger: log,
      backoff: o.remoteBackoff ?? { initialMs: 200, maxMs: 5_000 },
    });
    const reconciler = (this.reconciler = new Reconciler({
      effects: kubeImportEffects(o.local, { kubeConfigOf: (name) => this.registry.get(name)?.kubeConfig }, o.requestTimeoutMs ?? 15_000),
      imports: this.imports,
      secrets: this.secrets,
      configMaps: this.configMaps,
      records: this.records,
      registry: this.registry,
      policies: () => (this.policies.synced ? this.policies.list() : undefined),
      installNamespace: o.installNamespace,
      logger: log,
      metrics: o.metrics,
      refreshRatio: o.refreshRatio,
      maxRefreshIntervalMs: o.maxRefreshIntervalMs,
      safetyRequeueMs: o.safetyRequeueMs ?? 5 * 60_000,
    }));
    this.queue = new WorkQueue({
      reconcile: reconciler.reconcile,
      concurrency: o.concurrency,
      // Isolation between source clusters: imports are taken from the clusters in turn, at most
      // clusterConcurrency of one cluster at once, and a reconcile stuck on a source for more than
      // SLOW_RECONCILE_MS frees its global slot (its cluster then runs one at a time).
      groupOf: (key) => this.imports.get(key)?.sai.spec.clusterName ?? '',
      groupConcurrency: o.clusterConcurrency ?? o.concurrency,
      slowAfterMs: SLOW_RECONCILE_MS,
      // A cluster known unreachable (or refusing its credentials): its imports only write that
      // down, and when it fails all of them do at once. Together they take a tenth of the slots
      // and start at most 20 reconciles a second (the work queue's default), so that burst of
      // status writes and Events does not delay healthy clusters' imports (ADR 0025).
      groupFailing: (cluster) => {
        const c = this.registry.get(cluster);
        return c !== undefined && c.settled && !c.reachable;
      },
      metrics: o.metrics.queueHooks(),
      logger: log,
    });
  }

  /** Starts every watch (also on standby replicas, so a new leader starts warm). */
  start(): void {
    // Subscribed before the caches start, so the key pipeline sees every change from the first LIST.
    this.subs.push(this.queue.feed(this.keys$()));
    this.imports.start();
    this.secrets.start();
    this.configMaps.start();
    this.records.start();
    this.policies.start();
    this.registry.start();
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
    return this.localCaches().every((c) => c.synced);
  }

  async waitForSync(timeoutMs?: number): Promise<void> {
    await Promise.all(this.localCaches().map((c) => c.waitForSync(timeoutMs)));
  }

  /** Open watch connections: 5 local, plus per source cluster (never per import). */
  get watchCount(): number {
    return this.localCaches().filter((c) => c.running).length + this.registry.watchCount;
  }

  private localCaches(): SharedCache<unknown>[] {
    return [this.imports, this.secrets, this.configMaps, this.records, this.policies] as SharedCache<unknown>[];
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
    this.configMaps.stop();
    this.records.stop();
    this.policies.stop();
  }

  /** Every input of the key pipeline (streams/controller/keys.ts) as one ordered stream. */
  private keys$(): Observable<string> {
    const inputs$: Observable<KeyInput> = merge(
      this.imports.changes$.pipe(map((change): KeyInput => ({ kind: 'import', change }))),
      this.secrets.changes$.pipe(map((change): KeyInput => ({ kind: 'secret', change }))),
      this.configMaps.changes$.pipe(map((change): KeyInput => ({ kind: 'configmap', change }))),
      this.records.changes$.pipe(map((change): KeyInput => ({ kind: 'record', change }))),
      this.registry.events$.pipe(map((event): KeyInput => ({ kind: 'registry', event }))),
      // A policy change may allow or forbid any import: every import is looked at again (policies are few and rarely change).
      this.policies.changes$.pipe(map((): KeyInput => ({ kind: 'all', keys: this.imports.keys() }))),
      this.o.resyncPeriodMs > 0 ? resyncBatches(this.o.resyncPeriodMs, () => this.imports.keys()).pipe(map((keys): KeyInput => ({ kind: 'all', keys }))) : EMPTY,
    );
    return importKeys(inputs$, {
      // The echo of this process's own Secret write needs no reconcile: the writer already used it.
      forget: (k) => this.queue.forget(k),
      namespacesChanged: (cluster, namespaces) => this.registry.setNamespaces(cluster, namespaces),
    });
  }
}
