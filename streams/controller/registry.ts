import { merge, Subject, type Observable, type Subscription } from 'rxjs';
import { filter, map } from 'rxjs/operators';
import { isTokenImport } from '../../src/api/import.js';
import type { Logger } from '../../src/logger.js';
import { secretNameForImport } from '../../src/naming.js';
import { SecretAnnotations } from '../../src/secret.js';
import type { SharedCache } from '../cache.js';
import { TokenBucket } from '../ratelimit.js';
import type { BackoffOptions } from '../watch-policy.js';
import type { CachedImport, CachedSecret } from './projections.js';
import { RemoteCluster, type RemoteClusterSpec, type RemoteEvent } from './remote-cluster.js';

/**
 * Clusters registered at the same moment (every registration, when the controller starts) open
 * their watches evenly spaced, this many a second, instead of all in the same instant: each start
 * is a TLS handshake and a LIST of the source's ServiceAccounts, and hundreds of them at once pile
 * up in memory that the allocator keeps afterwards. A cluster added on its own starts at once.
 */
const CLUSTER_STARTS_PER_SECOND = 100;

export type RegistryEvent = { cluster: string } & ({ kind: 'added' | 'removed' | 'changed' } | RemoteEvent);

interface RegistryOptions {
  installNamespace: string;
  imports: SharedCache<CachedImport>;
  secrets: SharedCache<CachedSecret>;
  /** Clusters from `--kubeconfig` contexts (development). Registrations of the same name win. */
  staticClusters: RemoteClusterSpec[];
  logger: Logger;
  backoff?: BackoffOptions;
  idleTimeoutMs?: number;
}

/**
 * The source clusters the controller can reach, as an observable registry: every import in the
 * install namespace whose Secret holds a credential is a cluster named after it. Registrations
 * added, removed or re-pointed at runtime change the registry without a restart; a rotated
 * registration token is swapped into the existing client in place.
 */
export class ClusterRegistry {
  private readonly clusters = new Map<string, RemoteCluster>();
  private readonly remoteSubs = new Map<string, Subscription>();
  private readonly events = new Subject<RegistryEvent>();
  readonly events$: Observable<RegistryEvent> = this.events.asObservable();
  private sub?: Subscription;
  private readonly namespaces = new Map<string, Set<string>>();
  /** Spaces the clusters' starts (see CLUSTER_STARTS_PER_SECOND): a start reserves a token. */
  private readonly starts = new TokenBucket(CLUSTER_STARTS_PER_SECOND, 1);

  constructor(private readonly opts: RegistryOptions) {}

  start(): void {
    const ns = this.opts.installNamespace;
    const fromImports = this.opts.imports.changesWithExisting$().pipe(
      filter((c) => c.key.startsWith(`${ns}/`)),
      map((c) => c.key.slice(ns.length + 1)),
    );
    const fromSecrets = this.opts.secrets.changesWithExisting$().pipe(
      filter((c) => c.key.startsWith(`${ns}/`)),
      map((c) => (c.after ?? c.before)!.importName),
      filter((name) => name !== ''),
    );
    this.sub = merge(fromImports, fromSecrets).subscribe((name) => this.refresh(name));
    for (const spec of this.opts.staticClusters) this.refresh(spec.name);
  }

  get(name: string): RemoteCluster | undefined {
    return this.clusters.get(name);
  }

  names(): string[] {
    return [...this.clusters.keys()];
  }

  /** Open watch connections over all clusters. */
  get watchCount(): number {
    return [...this.clusters.values()].reduce((n, c) => n + c.watchCount, 0);
  }

  /** Tells a cluster which remote namespaces imports ask for (used when it cannot list cluster-wide). */
  setNamespaces(cluster: string, namespaces: Set<string>): void {
    this.namespaces.set(cluster, namespaces);
    this.clusters.get(cluster)?.setNamespaces(namespaces);
  }

  stop(): void {
    this.sub?.unsubscribe();
    for (const name of [...this.clusters.keys()]) this.remove(name);
    this.events.complete();
  }

  private desired(name: string): RemoteClusterSpec | undefined {
    const ns = this.opts.installNamespace;
    const registration = this.opts.imports.get(`${ns}/${name}`);
    // A federated import in the install namespace is not a registration: it holds no credential.
    if (registration && !registration.deleting && isTokenImport(registration.sai)) {
      const secret = this.opts.secrets.get(`${ns}/${secretNameForImport(name)}`);
      const cred = secret?.credential;
      // Only a Secret this registration controls counts (not a stale one of a deleted namesake).
      if (cred && secret.controllerUid === registration.uid) {
        const exp = secret.annotations[SecretAnnotations.expiration];
        const s = registration.sai.spec;
        return {
          name,
          server: cred.server,
          caPem: cred.caPem,
          auth: { kind: 'token', token: cred.token },
          source: 'registration',
          importer: { namespace: s.namespace, name: s.name },
          ...(exp && !Number.isNaN(Date.parse(exp)) ? { credentialExpiration: new Date(exp) } : {}),
        };
      }
      return undefined;
    }
    return this.opts.staticClusters.find((c) => c.name === name);
  }

  private refresh(name: string): void {
    const want = this.desired(name);
    const have = this.clusters.get(name);
    if (!want) {
      if (have) {
        this.opts.logger.info('cluster unregistered', { cluster: name });
        this.remove(name);
        this.events.next({ cluster: name, kind: 'removed' });
      }
      return;
    }
    if (have && have.sameEndpoint(want)) {
      if (want.auth.kind === 'token') have.updateToken(want.auth.token, want.credentialExpiration);
      return;
    }
    if (have) this.remove(name);
    const cluster = new RemoteCluster(want, { logger: this.opts.logger.child({ cluster: name }), backoff: this.opts.backoff, idleTimeoutMs: this.opts.idleTimeoutMs });
    this.clusters.set(name, cluster);
    this.remoteSubs.set(name, cluster.events$.subscribe((e) => this.events.next({ cluster: name, ...e })));
    cluster.setNamespaces(this.namespaces.get(name) ?? new Set());
    cluster.start(this.starts.reserve());
    this.opts.logger.info(have ? 'cluster re-pointed' : 'cluster registered', { cluster: name, server: want.server, source: want.source });
    this.events.next({ cluster: name, kind: have ? 'changed' : 'added' });
  }

  private remove(name: string): void {
    this.remoteSubs.get(name)?.unsubscribe();
    this.remoteSubs.delete(name);
    this.clusters.get(name)?.stop();
    this.clusters.delete(name);
  }
}
