import { ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { Reasons, READY, readyCondition, type Condition, type ImportStatus, type Reason } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, CONTROLLER_FIELD_MANAGER, IMPORT_KIND, IMPORT_PLURAL } from '../../src/constants.js';
import { conditionChanged, rfc3339, setCondition } from '../../src/controller/conditions.js';
import { decide, localTokenTimes, refreshTime, type ClusterView, type Decision, type RemoteServiceAccountView, type SecretView, type TokenRequestPlan } from '../../src/controller/decide.js';
import { evaluatePolicy, isRegistration, type ImportPolicy } from '../../src/consent/policy.js';
import { boundedLine } from '../../src/describe-error.js';
import type { Logger } from '../../src/logger.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, importNameOfSecret, mintFingerprint, SecretAnnotations } from '../../src/secret.js';
import type { CacheChange, SharedCache } from '../cache.js';
import { apiErrorMessage, callOptions, httpStatus } from '../kube-call.js';
import { readTokenClaims } from '../../src/jwt.js';
import type { ReconcileResult } from '../workqueue.js';
import { EventRecorder } from './events.js';
import type { ControllerMetrics } from './metrics.js';
import type { CachedImport, CachedSecret } from './projections.js';
import type { ClusterRegistry } from './registry.js';

interface ReconcilerOptions {
  local: KubeConfig;
  imports: SharedCache<CachedImport>;
  secrets: SharedCache<CachedSecret>;
  registry: ClusterRegistry;
  /** The target's ServiceAccountImportPolicies, as currently cached; undefined until listed. */
  policies: () => ImportPolicy[] | undefined;
  installNamespace: string;
  logger: Logger;
  metrics: ControllerMetrics;
  refreshRatio: number;
  maxRefreshIntervalMs?: number;
  /** How long a blocked import waits for an event before it is looked at again anyway. */
  safetyRequeueMs: number;
  requestTimeoutMs: number;
  now?: () => Date;
}

/** A failure the queue retries with per-key backoff, after the condition has been written. */
class RetryableError extends Error {
  override readonly name = 'RetryableError';
}

/**
 * The target refused a Secret write in a way a retry cannot cure (400 Bad Request, 422 Invalid).
 * A 403 stays retryable with backoff: RBAC caches lag right after install.
 */
class SecretRejectedError extends Error {
  override readonly name = 'SecretRejectedError';
}

function isPermanentWriteRefusal(status: number | undefined): boolean {
  return status === 400 || status === 422;
}

interface MintResult {
  token: string;
  issued: Date;
  expiration: Date;
  remoteUid: string;
}

/** The part of a token's claims the controller reads (no verification: the source issued it to us). */
/** The `details.kind` of a Kubernetes Status error body (which kind of object was not found). */
function statusDetailsKind(e: unknown): string | undefined {
  const body = e instanceof ApiException ? (e.body as unknown) : undefined;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { details?: { kind?: unknown } } | undefined;
    return typeof parsed?.details?.kind === 'string' ? parsed.details.kind : undefined;
  } catch {
    return undefined;
  }
}

function classifyMintError(e: unknown, request: TokenRequestPlan): { reason: Reason; retry: 'event' | 'backoff'; hint?: string } {
  const status = httpStatus(e);
  // The grant's anchor is gone (revoked, or the grant is incomplete): the grant no longer holds.
  if (status === 404 && request.boundSecret && statusDetailsKind(e) === 'secrets') {
    return { reason: Reasons.Forbidden, retry: 'event', hint: `the grant's anchor Secret ${request.boundSecret} is missing in the source (revoked or incomplete grant; re-run kubemcsa grant)` };
  }
  if (status === 409 && request.boundSecretUid) {
    return { reason: Reasons.Forbidden, retry: 'event', hint: `the grant's anchor Secret ${request.boundSecret} in the source is not the one the grant recorded (re-run kubemcsa grant)` };
  }
  if (status === 404) return { reason: Reasons.ServiceAccountNotFound, retry: 'event' };
  if (status === 403) return { reason: Reasons.Forbidden, retry: 'backoff' };
  if (status === 401) return { reason: Reasons.Unauthorized, retry: 'backoff' };
  if (status === 400 || status === 422) return { reason: Reasons.TokenRequestFailed, retry: 'backoff' };
  return { reason: Reasons.ClusterUnreachable, retry: 'backoff' };
}

/**
 * Converges one import: reads the folded state, asks `decide`, and performs what it says —
 * TokenRequest in the source, the Secret write and the status write in the target.
 */
export class Reconciler {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly remoteCore = new WeakMap<KubeConfig, CoreV1Api>();
  /** Secrets written but not yet seen by the cache: used instead of the stale cached view. */
  private readonly written = new Map<string, { previousVersion: string; version: string; secret: CachedSecret }>();
  /** Status written but not yet seen by the cache, by import key (same idea as `written`). */
  private readonly statusWritten = new Map<string, { previousVersion: string; status: ImportStatus }>();
  private readonly events: EventRecorder;
  private readonly now: () => Date;

  constructor(private readonly o: ReconcilerOptions) {
    this.core = o.local.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, o.logger, { timeoutMs: o.requestTimeoutMs });
    this.custom = o.local.makeApiClient(CustomObjectsApi);
    this.now = o.now ?? (() => new Date());
  }

  readonly reconcile = async (key: string, signal: AbortSignal): Promise<ReconcileResult> => {
    const imp = this.o.imports.get(key);
    if (!imp || imp.deleting) {
      const [namespace = '', name = ''] = key.split('/');
      this.statusWritten.delete(key);
      this.written.delete(`${namespace}/${secretNameForImport(name)}`);
      return; // the owner reference lets the garbage collector delete the Secret
    }
    const log = this.o.logger.child({ key, cluster: imp.sai.spec.clusterName });
    const { spec } = imp.sai;
    const cluster = this.o.registry.get(spec.clusterName);
    const clusterView: ClusterView | undefined = cluster && {
      name: cluster.name,
      server: cluster.spec.server,
      caPem: cluster.spec.caPem,
      reachable: cluster.reachable,
      lastError: cluster.lastError,
      lastStatusCode: cluster.lastStatusCode,
      settled: cluster.settled,
      ...(cluster.consent ? { consent: cluster.consent } : {}),
      ...(cluster.spec.credentialExpiration ? { credentialExpiration: cluster.spec.credentialExpiration } : {}),
    };
    const remote: RemoteServiceAccountView = cluster ? cluster.serviceAccount(spec.namespace, spec.name) : { state: 'unknown' };
    const secretKey = `${imp.namespace}/${secretNameForImport(imp.name)}`;
    const secret = this.currentSecret(secretKey);
    if (secret?.foreignController) {
      return this.block(imp, log, { action: 'blocked', reason: Reasons.SecretConflict, message: `Secret ${secretKey} exists and is controlled by another object; delete or rename it`, retry: 'event' }, secret);
    }
    const policies = this.o.policies();
    const policy =
      policies &&
      evaluatePolicy(
        { namespace: imp.namespace, clusterName: spec.clusterName, remoteNamespace: spec.namespace, remoteName: spec.name, expirationSeconds: spec.expirationSeconds, audiences: spec.audiences },
        policies,
        this.o.installNamespace,
      );
    const decision = decide({
      key,
      sai: imp.sai,
      cluster: clusterView,
      remote,
      secret: secret && this.secretView(secret, imp),
      fingerprint: clusterView ? mintFingerprint({ spec, server: clusterView.server, caPem: clusterView.caPem }) : '',
      rotation: imp.rotation,
      now: this.now(),
      refreshRatio: this.o.refreshRatio,
      maxRefreshIntervalMs: this.o.maxRefreshIntervalMs,
      registration: isRegistration(imp.namespace, this.o.installNamespace),
      policy,
    });
    switch (decision.action) {
      case 'wait':
        return { requeueAfterMs: decision.afterMs };
      case 'blocked':
        return this.block(imp, log, decision, secret);
      case 'ready':
        await this.writeStatus(imp, log, { status: 'True', reason: Reasons.TokenIssued, message: readyMessage(imp, decision.expiration) }, decision.expiration, true);
        return { requeueAfterMs: Math.max(0, decision.refreshAt.getTime() - this.now().getTime()) };
      case 'mint':
        return this.mintAndWrite(imp, log, decision, clusterView!, remote, secret, signal);
    }
  };

  private async mintAndWrite(imp: CachedImport, log: Logger, decision: Extract<Decision, { action: 'mint' }>, cluster: ClusterView, remote: RemoteServiceAccountView, secret: CachedSecret | undefined, signal: AbortSignal): Promise<ReconcileResult> {
    const { spec } = imp.sai;
    const { why, request } = decision;
    let minted: MintResult;
    try {
      minted = await this.mint(imp, remote, request, signal);
      this.o.metrics.tokenRequests.inc({ cluster: cluster.name, result: 'ok' });
    } catch (e) {
      this.o.metrics.tokenRequests.inc({ cluster: cluster.name, result: String(httpStatus(e) ?? 'error') });
      const { reason, retry, hint } = classifyMintError(e, request);
      const message = `TokenRequest for ServiceAccount ${spec.namespace}/${spec.name} in cluster "${cluster.name}" failed: ${hint ?? apiErrorMessage(e)}`;
      return this.block(imp, log, { action: 'blocked', reason, message, retry }, secret);
    }
    this.o.metrics.tokensMinted.inc({ cluster: cluster.name, why });
    const desired = buildImportSecret({
      importName: imp.name,
      importNamespace: imp.namespace,
      importUid: imp.uid,
      credential: { token: minted.token, server: cluster.server, caPem: cluster.caPem, namespace: spec.namespace },
      issued: minted.issued,
      expiration: minted.expiration,
      remoteUid: minted.remoteUid,
      fingerprint: decision.fingerprint,
      rotation: imp.rotation,
    });
    try {
      await this.writeSecret(desired, signal);
    } catch (e) {
      if (!(e instanceof SecretRejectedError)) throw e;
      // A permanent refusal: minting again would only discard another token. The import comes
      // back when it, its Secret or its cluster changes (any of which may cure the refusal).
      return this.block(imp, log, { action: 'blocked', reason: Reasons.SecretRejected, message: e.message, retry: 'never' }, secret);
    }
    log.info('token minted and Secret written', { why, secret: desired.metadata!.name, expiration: minted.expiration.toISOString(), ...(request.boundSecret ? { boundTo: request.boundSecret } : {}) });
    await this.writeStatus(imp, log, { status: 'True', reason: Reasons.TokenIssued, message: readyMessage(imp, minted.expiration) }, minted.expiration, true);
    const refreshAt = refreshTime(`${imp.namespace}/${imp.name}`, minted.issued, minted.expiration, this.o.refreshRatio, this.o.maxRefreshIntervalMs);
    return { requeueAfterMs: Math.max(0, refreshAt.getTime() - this.now().getTime()) };
  }

  private async mint(imp: CachedImport, remote: RemoteServiceAccountView, request: TokenRequestPlan, signal: AbortSignal): Promise<MintResult> {
    const cluster = this.o.registry.get(imp.sai.spec.clusterName)!;
    let api = this.remoteCore.get(cluster.kubeConfig);
    if (!api) {
      api = cluster.kubeConfig.makeApiClient(CoreV1Api);
      this.remoteCore.set(cluster.kubeConfig, api);
    }
    const { spec } = imp.sai;
    const tr = await api.createNamespacedServiceAccountToken(
      {
        namespace: spec.namespace,
        name: spec.name,
        body: {
          spec: {
            expirationSeconds: request.expirationSeconds,
            audiences: request.audiences,
            ...(request.boundSecret ? { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: request.boundSecret, ...(request.boundSecretUid ? { uid: request.boundSecretUid } : {}) } } : {}),
          },
        },
      },
      callOptions({ timeoutMs: this.o.requestTimeoutMs, signal }),
    );
    const receivedAt = this.now();
    const token = tr.status?.token;
    if (!token) throw new Error('TokenRequest returned no token');
    const c = readTokenClaims(token);
    const sourceExpiration = tr.status?.expirationTimestamp ? new Date(tr.status.expirationTimestamp) : new Date(receivedAt.getTime() + request.expirationSeconds * 1000);
    const { issued, expiration } = localTokenTimes(receivedAt, c.issuedAt, sourceExpiration, request.expirationSeconds);
    const remoteUid = c.serviceAccountUid ?? (remote.state === 'present' ? remote.uid : '');
    return { token, issued, expiration, remoteUid };
  }

  /**
   * Server-side apply under the controller's field manager: only the fields the controller sets
   * are its own, so labels and annotations other tools add (reloaders, backup tools) survive every
   * refresh. `force` takes over fields another manager set on what is the import's Secret.
   */
  private async writeSecret(desired: V1Secret, signal: AbortSignal): Promise<void> {
    const ns = desired.metadata!.namespace!;
    const name = desired.metadata!.name!;
    let written: V1Secret;
    try {
      written = await this.core.patchNamespacedSecret(
        { namespace: ns, name, body: desired, fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
        callOptions({ timeoutMs: this.o.requestTimeoutMs, signal, contentType: PatchStrategy.ServerSideApply }),
      );
    } catch (e) {
      const message = `writing Secret ${ns}/${name} failed: ${apiErrorMessage(e)}`;
      if (isPermanentWriteRefusal(httpStatus(e))) throw new SecretRejectedError(message);
      throw new RetryableError(message);
    }
    const key = `${ns}/${name}`;
    const cachedNow = this.o.secrets.get(key);
    const ann = written.metadata?.annotations ?? {};
    this.written.set(key, {
      previousVersion: cachedNow?.resourceVersion ?? '',
      version: written.metadata?.resourceVersion ?? '',
      secret: {
        namespace: ns,
        name,
        resourceVersion: written.metadata?.resourceVersion ?? '',
        importName: importNameOfSecret(desired.metadata),
        controllerUid: desired.metadata!.ownerReferences![0]!.uid,
        foreignController: false,
        dataIntact: true,
        annotations: Object.fromEntries(Object.entries(ann).filter(([k]) => Object.values(SecretAnnotations).includes(k as never))),
      },
    });
  }

  /**
   * True when a cache change is the watch echo of a Secret this process wrote (same
   * resourceVersion): the content is what the writer decided on. The entry is dropped, as the
   * cache has caught up.
   */
  isOwnWrite(c: CacheChange<CachedSecret>): boolean {
    if (!c.after) return false;
    const mine = this.written.get(c.key);
    if (!mine || mine.version === '' || mine.version !== c.after.resourceVersion) return false;
    this.written.delete(c.key);
    return true;
  }

  /** The Secret as last seen, preferring what this process wrote over a cache that has not caught up. */
  private currentSecret(key: string): CachedSecret | undefined {
    const cached = this.o.secrets.get(key);
    const mine = this.written.get(key);
    if (!mine) return cached;
    const cacheIsBehind = cached === undefined ? mine.previousVersion === '' : cached.resourceVersion === mine.previousVersion;
    if (cacheIsBehind) return mine.secret;
    this.written.delete(key);
    return cached;
  }

  private secretView(s: CachedSecret, imp: CachedImport): SecretView {
    const a = s.annotations;
    const date = (v: string | undefined) => (v && !Number.isNaN(Date.parse(v)) ? new Date(v) : undefined);
    return {
      intact: s.dataIntact && s.importName === imp.name && s.controllerUid === imp.uid,
      fingerprint: a[SecretAnnotations.fingerprint],
      remoteUid: a[SecretAnnotations.remoteUid],
      rotation: a[SecretAnnotations.rotation],
      issued: date(a[SecretAnnotations.issued]),
      expiration: date(a[SecretAnnotations.expiration]),
    };
  }

  private async block(imp: CachedImport, log: Logger, d: Extract<Decision, { action: 'blocked' }>, secret: CachedSecret | undefined): Promise<ReconcileResult> {
    const expiration = secret?.annotations[SecretAnnotations.expiration];
    await this.writeStatus(imp, log, { status: 'False', reason: d.reason, message: d.message }, expiration ? new Date(expiration) : undefined, secret !== undefined);
    if (d.retry === 'backoff') throw new RetryableError(d.message);
    if (d.retry === 'event') return { requeueAfterMs: this.o.safetyRequeueMs };
    return;
  }

  private async writeStatus(imp: CachedImport, log: Logger, ready: { status: 'True' | 'False'; reason: Reason; message: string }, expiration: Date | undefined, secretExists: boolean): Promise<void> {
    const key = `${imp.namespace}/${imp.name}`;
    const mine = this.statusWritten.get(key);
    const cacheIsBehind = mine !== undefined && mine.previousVersion === imp.resourceVersion;
    if (mine && !cacheIsBehind) this.statusWritten.delete(key);
    const current = cacheIsBehind ? mine.status : (imp.sai.status ?? {});
    const previous = readyCondition({ status: current });
    // Messages carry text from source clusters: bounded and redacted once more, whatever built them.
    const message = boundedLine(ready.message);
    const next: Omit<Condition, 'lastTransitionTime'> = { type: READY, ...ready, message, observedGeneration: imp.generation };
    const status: ImportStatus = {
      ...current,
      conditions: setCondition(current.conditions, next, this.now()),
      observedGeneration: imp.generation,
      ...(secretExists ? { secrets: [{ name: secretNameForImport(imp.name) }] } : {}),
      ...(expiration ? { expirationTimestamp: rfc3339(expiration) } : {}),
    };
    if (isDeepStrictEqual(status, current)) return;
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, namespace: imp.namespace, plural: IMPORT_PLURAL, name: imp.name, body: { status } },
        callOptions({ timeoutMs: this.o.requestTimeoutMs, contentType: PatchStrategy.MergePatch }),
      );
    } catch (e) {
      if (httpStatus(e) === 404) return; // deleted meanwhile
      throw new RetryableError(`writing status of ${IMPORT_KIND} ${imp.namespace}/${imp.name} failed: ${apiErrorMessage(e)}`);
    }
    this.statusWritten.set(key, { previousVersion: imp.resourceVersion, status });
    // An Event per transition of Ready (status or reason). The first Ready=True of a new import is
    // the expected path and only visible in its status: Events are for what an operator should notice.
    const transition = previous ? previous.status !== next.status || previous.reason !== next.reason : next.status !== 'True';
    if (conditionChanged(previous, next) && transition) {
      log[ready.status === 'True' ? 'info' : 'warn']('Ready condition changed', { ready: ready.status, reason: ready.reason, detail: message });
      this.recordEvent(imp, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, message);
    }
  }

  private recordEvent(imp: CachedImport, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = this.now();
    this.events.record({
      metadata: { generateName: `${imp.name.slice(0, 200)}.`, namespace: imp.namespace },
      involvedObject: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: IMPORT_KIND, name: imp.name, namespace: imp.namespace, uid: imp.uid, resourceVersion: imp.resourceVersion },
      reason,
      message: boundedLine(message),
      type,
      source: { component: 'multicluster-service-account-controller' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: 'multicluster-service-account-controller',
    });
  }

  /** Waits for queued Events (shutdown). */
  flushEvents(): Promise<void> {
    return this.events.flush();
  }
}

function readyMessage(imp: CachedImport, expiration: Date): string {
  const s = imp.sai.spec;
  return `token for ServiceAccount ${s.namespace}/${s.name} in cluster "${s.clusterName}" is in Secret ${secretNameForImport(imp.name)}; it expires at ${rfc3339(expiration)} and is refreshed before`;
}
