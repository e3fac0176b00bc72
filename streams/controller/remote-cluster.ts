import { KubeConfig, type User } from '@kubernetes/client-node';
import { Subject, type Observable, type Subscription } from 'rxjs';
import type { RemoteServiceAccountView, SourceConsent } from '../../src/controller/decide.js';
import { ALL, type Grant } from '../../src/consent/grants.js';
import type { Logger } from '../../src/logger.js';
import { SharedCache } from '../cache.js';
import { listWatch, type WatchHealth } from '../watch.js';
import { backoffDelay, type BackoffOptions } from '../watch-policy.js';
import { projectServiceAccount, type CachedServiceAccount } from './projections.js';
import { reuseConnections } from '../../src/kube/reuse-connections.js';

/** How the controller authenticates to a source cluster. */
type ClusterAuth =
  /** A bearer token that is replaced in place when the registration's token rotates. */
  | { kind: 'token'; token: string }
  /** A kubeconfig context (development: `--kubeconfig` contexts are clusters too). */
  | { kind: 'kubeconfig'; kubeConfig: KubeConfig };

export interface RemoteClusterSpec {
  name: string;
  server: string;
  caPem: string;
  auth: ClusterAuth;
  source: 'registration' | 'kubeconfig';
  /** Registrations: the importer ServiceAccount in the source, whose annotations record the grants. */
  importer?: { namespace: string; name: string };
  /** Registrations: when the registration's token expires (local clock). */
  credentialExpiration?: Date;
}

export type RemoteEvent =
  | { kind: 'health'; reachable: boolean }
  | { kind: 'serviceaccount'; namespace: string; name: string }
  /** The grants recorded on the importer changed (or became known). */
  | { kind: 'grants' }
  | { kind: 'synced' };

const AUTH_PROVIDER = 'mcsa-rotating-token';

/** How long calls to a cluster whose calls fail are held back: 1 s, doubling, up to a minute, jittered. */
const CALL_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.3 };

/** The token a registration's KubeConfig sends; swapped without rebuilding clients or watches. */
class TokenHolder {
  constructor(public token: string) {}
  authenticator() {
    return {
      isAuthProvider: (user: User) => user.authProvider?.name === AUTH_PROVIDER,
      applyAuthentication: async (_user: User, opts: { headers?: Record<string, string> }) => {
        opts.headers ??= {};
        opts.headers.Authorization = `Bearer ${this.token}`;
      },
    };
  }
}

function tokenKubeConfig(spec: RemoteClusterSpec, holder: TokenHolder): KubeConfig {
  const kc = reuseConnections(new KubeConfig());
  kc.loadFromOptions({
    clusters: [{ name: spec.name, server: spec.server, caData: Buffer.from(spec.caPem).toString('base64'), skipTLSVerify: false }],
    // A distinct user name per cluster: client-node caches credentials by user name.
    users: [{ name: `mcsa-importer@${spec.name}`, authProvider: { name: AUTH_PROVIDER, config: {} } }],
    contexts: [{ name: spec.name, cluster: spec.name, user: `mcsa-importer@${spec.name}` }],
    currentContext: spec.name,
  });
  kc.addAuthenticator(holder.authenticator());
  return kc;
}

/** Cache key of a projected object: `namespace/name`. */
export const flatKey = (o: { namespace: string; name: string }): string => `${o.namespace}/${o.name}`;
export const sameVersion = (a: { resourceVersion: string }, b: { resourceVersion: string }): boolean => a.resourceVersion !== '' && a.resourceVersion === b.resourceVersion;

function isAuthorizationFailure(h: WatchHealth): boolean {
  return !h.connected && /HTTP 403\b/.test(h.lastError ?? '');
}

/**
 * One source cluster: its client configuration and a watch of its ServiceAccounts (cluster-wide,
 * or per namespace when the importer may only list some namespaces). Reachability follows the
 * watch: a cluster whose API server cannot be reached is reported within a second or two.
 */
export class RemoteCluster {
  readonly kubeConfig: KubeConfig;
  private readonly holder?: TokenHolder;
  private readonly events = new Subject<RemoteEvent>();
  readonly events$: Observable<RemoteEvent> = this.events.asObservable();
  private mode: 'cluster' | 'namespaced' = 'cluster';
  private readonly watches = new Map<string, { cache: SharedCache<CachedServiceAccount>; sub: Subscription; health?: WatchHealth }>();
  private wantedNamespaces = new Set<string>();
  private reachableNow = true;
  private settledNow = false;
  private lastErrorNow?: string;
  private lastStatusCodeNow?: number;
  private grantsKey = '';
  /** Calls to this cluster are failing (no answer, 5xx): until `retryAt`, none is tried. */
  private breaker?: { error: string; statusCode?: number; failures: number; retryAt: number; timer: NodeJS.Timeout };
  /** A start that waits its turn (`start(delayMs)`). */
  private startTimer?: NodeJS.Timeout;

  constructor(
    readonly spec: RemoteClusterSpec,
    private readonly opts: { logger: Logger; backoff?: BackoffOptions; idleTimeoutMs?: number },
  ) {
    if (spec.auth.kind === 'token') {
      this.holder = new TokenHolder(spec.auth.token);
      this.kubeConfig = tokenKubeConfig(spec, this.holder);
    } else {
      this.kubeConfig = reuseConnections(spec.auth.kubeConfig);
    }
  }

  get name(): string {
    return this.spec.name;
  }

  /** The watch is connected and calls are not being held back (see `noteCallFailure`). */
  get reachable(): boolean {
    return this.reachableNow && !this.holdingCalls;
  }

  get lastError(): string | undefined {
    return this.reachableNow && this.holdingCalls ? this.breaker!.error : this.lastErrorNow;
  }

  /** The HTTP status of that failure, when the server answered. */
  get lastStatusCode(): number | undefined {
    return this.reachableNow && this.holdingCalls ? this.breaker!.statusCode : this.lastStatusCodeNow;
  }

  private get holdingCalls(): boolean {
    return this.breaker !== undefined && Date.now() < this.breaker.retryAt;
  }

  /**
   * A call failed in a way that says the cluster is sick (`failureIsTheCluster`): the cluster is
   * unreachable for its imports, which then fail at once with this error instead of each waiting
   * out its own deadline, until a delay passes (1 s doubling to 1 min, jittered). Then the next
   * reconciles try again; a success ends it, another failure doubles the delay. The watch may
   * still look healthy meanwhile (a source that answers watches but not TokenRequests, or the
   * first 30 s of a partition before the watch's idle timeout).
   */
  noteCallFailure(error: string, statusCode?: number): void {
    const wasHolding = this.holdingCalls;
    const failures = (this.breaker?.failures ?? 0) + 1;
    clearTimeout(this.breaker?.timer);
    const delayMs = backoffDelay(failures, CALL_BACKOFF);
    const timer = setTimeout(() => {
      // Due: the imports waiting on this cluster look again (and the first of them tries a call).
      if (this.reachableNow) this.events.next({ kind: 'health', reachable: true });
    }, delayMs);
    timer.unref();
    this.breaker = { error, ...(statusCode !== undefined ? { statusCode } : {}), failures, retryAt: Date.now() + delayMs, timer };
    if (wasHolding) return;
    this.opts.logger.warn('calls to the cluster are failing; its imports wait before calling it again', { cluster: this.name, error, failures, retryInMs: delayMs });
    if (this.reachableNow) this.events.next({ kind: 'health', reachable: false });
  }

  /** A call succeeded: calls are no longer held back. */
  noteCallSuccess(): void {
    if (!this.breaker) return;
    clearTimeout(this.breaker.timer);
    this.breaker = undefined;
    this.opts.logger.info('calls to the cluster succeed again', { cluster: this.name });
  }

  /**
   * False until the first watch of this endpoint has connected or failed: until then `reachable`
   * is only a guess (a cluster re-pointed at a wrong server must not be reported Ready meanwhile).
   */
  get settled(): boolean {
    return this.settledNow;
  }

  /** Number of open watch connections (for metrics and the benchmark). */
  get watchCount(): number {
    return this.watches.size;
  }

  /** Replaces the bearer token in place (a registration's token rotated). */
  updateToken(token: string, credentialExpiration?: Date): void {
    if (this.holder) this.holder.token = token;
    this.spec.credentialExpiration = credentialExpiration;
  }

  /** Whether `spec` can be served by this instance (same server, CA, importer and kind of auth). */
  sameEndpoint(spec: RemoteClusterSpec): boolean {
    return (
      spec.server === this.spec.server &&
      spec.caPem.trim() === this.spec.caPem.trim() &&
      spec.auth.kind === this.spec.auth.kind &&
      spec.source === this.spec.source &&
      spec.importer?.namespace === this.spec.importer?.namespace &&
      spec.importer?.name === this.spec.importer?.name
    );
  }

  /** Opens the watch, now or after `delayMs` (see the registry's start spacing). */
  start(delayMs = 0): void {
    if (delayMs <= 0) {
      this.open('');
      return;
    }
    this.startTimer = setTimeout(() => {
      this.startTimer = undefined;
      this.open('');
    }, delayMs);
  }

  /**
   * What the source granted to this target: the grants recorded on the importer ServiceAccount
   * (undefined until it is cached). None for a `--kubeconfig` cluster, whose credentials are the
   * operator's own.
   */
  get consent(): SourceConsent | undefined {
    const importer = this.spec.importer;
    if (!importer) return undefined;
    const w = this.watches.get(this.mode === 'cluster' ? '' : importer.namespace);
    // The importer may not watch its own namespace (a registration made before grants existed):
    // nothing is known to be granted, so nothing is (re-running bootstrap adds the binding).
    if (w?.health && isAuthorizationFailure(w.health)) return { importer: importer.name, grants: [] };
    const sa = w?.cache.synced ? w.cache.get(`${importer.namespace}/${importer.name}`) : undefined;
    return { importer: importer.name, grants: sa ? (sa.grants ?? []) : undefined };
  }

  /**
   * Namespaces watched one by one when the importer cannot list cluster-wide: the importer's own
   * and the namespaces granted to this target, so the watches follow what the source granted and
   * never what tenants write in imports.
   */
  private namespacedScope(): Set<string> {
    const scope = new Set<string>();
    if (this.spec.importer) scope.add(this.spec.importer.namespace);
    for (const g of this.consent?.grants ?? []) if (g.namespace !== ALL) scope.add(g.namespace);
    for (const ns of this.wantedNamespaces) scope.add(ns);
    return scope;
  }

  /** Namespaces a development (`--kubeconfig`) cluster's imports ask for, watched one by one when it cannot list cluster-wide. */
  setNamespaces(namespaces: Set<string>): void {
    if (this.spec.importer) return; // a registration's watches follow its grants instead
    this.wantedNamespaces = namespaces;
    this.rescope();
  }

  private rescope(): void {
    if (this.mode !== 'namespaced') return;
    const scope = this.namespacedScope();
    for (const ns of scope) if (!this.watches.has(ns)) this.open(ns);
    for (const ns of [...this.watches.keys()]) if (!scope.has(ns)) this.close(ns);
  }

  serviceAccount(namespace: string, name: string): RemoteServiceAccountView {
    const scope = this.mode === 'cluster' ? '' : namespace;
    const w = this.watches.get(scope);
    if (!w || !w.cache.synced) return { state: 'unknown' };
    const sa = w.cache.get(`${namespace}/${name}`);
    return sa ? { state: 'present', uid: sa.uid } : { state: 'absent' };
  }

  get synced(): boolean {
    return this.startTimer === undefined && [...this.watches.values()].every((w) => w.cache.synced);
  }

  stop(): void {
    clearTimeout(this.startTimer);
    this.startTimer = undefined;
    clearTimeout(this.breaker?.timer);
    for (const ns of [...this.watches.keys()]) this.close(ns);
    this.events.complete();
  }

  private open(namespace: string): void {
    const path = namespace ? `/api/v1/namespaces/${namespace}/serviceaccounts` : '/api/v1/serviceaccounts';
    const describe = `${this.name} serviceaccounts${namespace ? ` in ${namespace}` : ''}`;
    const entry: { cache: SharedCache<CachedServiceAccount>; sub: Subscription; health?: WatchHealth } = {} as never;
    const source = listWatch({
      kubeConfig: this.kubeConfig,
      path,
      project: projectServiceAccount,
      describe,
      logger: this.opts.logger,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      backoff: this.opts.backoff,
      onHealth: (h) => {
        entry.health = h;
        this.onHealth(namespace, h);
      },
    });
    entry.cache = new SharedCache<CachedServiceAccount>(source, { keyOf: flatKey, same: sameVersion, describe, logger: this.opts.logger });
    entry.sub = entry.cache.changes$.subscribe((c) => {
      const [ns, n] = c.key.split('/') as [string, string];
      this.events.next({ kind: 'serviceaccount', namespace: ns, name: n });
      this.checkGrants();
    });
    const syncSub = entry.cache.synced$.subscribe((s) => {
      if (!s) return;
      this.events.next({ kind: 'synced' });
      this.checkGrants();
    });
    entry.sub.add(syncSub);
    entry.cache.start();
    this.watches.set(namespace, entry);
  }

  /** Emits `grants` when what the importer's record says changed, and follows it with the namespaced watches. */
  private checkGrants(): void {
    const grants = this.consent?.grants;
    const key = grants === undefined ? '' : JSON.stringify(grants.map((g: Grant) => `${g.namespace}/${g.serviceAccount}`).sort());
    if (key === this.grantsKey) return;
    this.grantsKey = key;
    this.rescope();
    this.events.next({ kind: 'grants' });
  }

  private close(namespace: string): void {
    const w = this.watches.get(namespace);
    if (!w) return;
    w.sub.unsubscribe();
    w.cache.stop();
    this.watches.delete(namespace);
  }

  private onHealth(namespace: string, h: WatchHealth): void {
    if (namespace === '' && this.mode === 'cluster' && isAuthorizationFailure(h)) {
      this.opts.logger.info('the importer may not list ServiceAccounts cluster-wide; watching its own and the granted namespaces one by one', { cluster: this.name });
      this.mode = 'namespaced';
      this.close('');
      this.rescope();
      return;
    }
    // Reachability is about the network and the server, not permissions: a 403 in one namespace
    // is that import's problem (TokenRequest will say Forbidden), not the cluster's.
    const unreachable = [...this.watches.values()].map((w) => w.health).find((x) => x && !x.connected && !isAuthorizationFailure(x));
    const reachable = unreachable === undefined;
    this.lastErrorNow = unreachable?.lastError;
    const statusChanged = unreachable?.statusCode !== this.lastStatusCodeNow;
    this.lastStatusCodeNow = unreachable?.statusCode;
    const first = !this.settledNow;
    this.settledNow = true;
    if (reachable !== this.reachableNow) {
      this.reachableNow = reachable;
      this.opts.logger[reachable ? 'info' : 'warn'](reachable ? 'cluster reachable again' : 'cluster unreachable', { cluster: this.name, error: this.lastErrorNow });
      this.events.next({ kind: 'health', reachable });
    } else if (first || (!reachable && statusChanged)) {
      // Imports that waited for the first answer go now; a new kind of failure (a 401 after a
      // timeout, say) gives its imports the matching reason.
      this.events.next({ kind: 'health', reachable });
    }
    // A watch of the importer's namespace refused (403) settles its grants as none.
    this.checkGrants();
  }
}
