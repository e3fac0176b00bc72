import { ApiException, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { isFederatedImport, isTokenImport, Reasons, READY, readyCondition, type Condition, type FederatedImport, type ImportStatus, type Reason, type TokenImport } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, IMPORT_KIND } from '../../src/constants.js';
import { conditionChanged, rfc3339, setCondition } from '../../src/controller/conditions.js';
import { decide, decideFederated, failureIsTheCluster, leftoverOf, orphansOf, localTokenTimes, refreshTime, secretWriteRefusedForGood, tokenRequestFailure, type ClusterView, type Decision, type FederatedDecision, type GeneratedObjectView, type RemoteServiceAccountView, type SecretView, type TokenRequestPlan } from '../../src/controller/decide.js';
import { evaluateFederatedPolicy, evaluatePolicy, isRegistration, type ImportPolicy } from '../../src/consent/policy.js';
import { boundedLine, describeError, httpStatusOf } from '../../src/describe-error.js';
import type { Logger } from '../../src/logger.js';
import { configMapNameForImport, secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, mintFingerprint, SecretAnnotations } from '../../src/secret.js';
import type { SharedCache } from '../cache.js';
import { readTokenClaims } from '../../src/jwt.js';
import type { ReconcileResult } from '../workqueue.js';
import { EventRecorder } from './events.js';
import type { ControllerMetrics } from './metrics.js';
import { projectConfigMap, projectImport, projectSecret, type CachedConfigMap, type CachedFederatedRecord, type CachedImport, type CachedSecret } from './projections.js';
import type { ImportEffects } from './effects.js';
import type { RemoteCluster } from './remote-cluster.js';

/** What the reconciler reads of a source cluster (a `RemoteCluster`; tests give plain objects). */
type ClusterState = Pick<RemoteCluster, 'name' | 'spec' | 'reachable' | 'lastError' | 'lastStatusCode' | 'settled' | 'consent' | 'serviceAccount' | 'noteCallFailure' | 'noteCallSuccess'>;

interface ReconcilerOptions {
  /** The API calls a reconcile makes (`kubeImportEffects` in production). */
  effects: ImportEffects;
  imports: SharedCache<CachedImport>;
  secrets: SharedCache<CachedSecret>;
  /** Federated imports' generated ConfigMaps (ADR 0022). */
  configMaps: SharedCache<CachedConfigMap>;
  /** Federated source records (ConfigMaps in the install namespace). */
  records: SharedCache<CachedFederatedRecord>;
  registry: { get(name: string): ClusterState | undefined };
  /** The target's ServiceAccountImportPolicies, as currently cached; undefined until listed. */
  policies: () => ImportPolicy[] | undefined;
  installNamespace: string;
  logger: Logger;
  metrics: ControllerMetrics;
  refreshRatio: number;
  maxRefreshIntervalMs?: number;
  /** How long a blocked import waits for an event before it is looked at again anyway. */
  safetyRequeueMs: number;
  now?: () => Date;
}

/** Status fields only a token import has, and only a federated import has. */
const TOKEN_STATUS_FIELDS: (keyof ImportStatus)[] = ['secrets', 'expirationTimestamp'];
const FEDERATED_STATUS_FIELDS: (keyof ImportStatus)[] = ['audience', 'expirationSeconds'];

/** A failure the queue retries with per-key backoff, after the condition has been written. */
class RetryableError extends Error {
  override readonly name = 'RetryableError';
}

/** The target refused a Secret write for good (`secretWriteRefusedForGood`). */
class SecretRejectedError extends Error {
  override readonly name = 'SecretRejectedError';
}

interface MintResult {
  token: string;
  issued: Date;
  expiration: Date;
  remoteUid: string;
}

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

/**
 * Converges one import: reads the folded state, asks `decide`, and performs what it says —
 * TokenRequest in the source, the Secret write and the status write in the target.
 */
export class Reconciler {
  private readonly projectSecret: (raw: unknown) => CachedSecret;
  private readonly events: EventRecorder;
  private readonly now: () => Date;

  constructor(private readonly o: ReconcilerOptions) {
    // One writer: when a cluster fails, all its imports record an Event at once, and that burst
    // must not crowd the local API server that healthy imports write to (ADR 0025).
    this.events = new EventRecorder((e) => o.effects.createEvent(e), o.logger, { concurrency: 1 });
    this.now = o.now ?? (() => new Date());
    this.projectSecret = projectSecret(o.installNamespace);
  }

  readonly reconcile = async (key: string, signal: AbortSignal): Promise<ReconcileResult> => {
    const imp = this.o.imports.get(key);
    if (!imp) return this.removeOrphans(key, signal);
    // Being deleted (finalizers, foreground deletion): the owner reference lets the garbage collector delete the Secret (or ConfigMap).
    if (imp.deleting) return;
    const log = this.o.logger.child({ key, cluster: imp.sai.spec.clusterName });
    await this.removeLeftover(imp, log, signal);
    const sai = imp.sai;
    if (isTokenImport(sai)) return this.reconcileToken(imp, sai, key, log, signal);
    if (isFederatedImport(sai)) return this.reconcileFederated(imp, sai, log, signal);
    return undefined;
  };

  private async reconcileToken(imp: CachedImport, sai: TokenImport, key: string, log: Logger, signal: AbortSignal): Promise<ReconcileResult> {
    const { spec } = sai;
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
    // Both caches return this process's own writes until their watches catch up (read-your-writes).
    const secret = this.o.secrets.get(secretKey);
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
      secretKey,
      sai,
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
        await this.writeStatus(imp, log, { status: 'True', reason: Reasons.TokenIssued, message: readyMessage(imp, sai, decision.expiration) }, decision.expiration, true);
        return { requeueAfterMs: Math.max(0, decision.refreshAt.getTime() - this.now().getTime()) };
      case 'mint':
        return this.mintAndWrite(imp, sai, log, decision, clusterView!, remote, secret, signal);
    }
  }

  /** A federated import (ADR 0022): the policy, the source's record, and the ConfigMap in the import's namespace; nothing is minted. */
  private async reconcileFederated(imp: CachedImport, sai: FederatedImport, log: Logger, signal: AbortSignal): Promise<ReconcileResult> {
    const source = sai.spec.clusterName;
    const configMapKey = `${imp.namespace}/${configMapNameForImport(imp.name)}`;
    const cm = this.o.configMaps.get(configMapKey);
    const policies = this.o.policies();
    const decision: FederatedDecision = decideFederated({
      sai,
      configMapKey,
      records: this.o.records.list().filter((r) => r.source === source).map((r) => ({ key: `${r.namespace}/${r.name}`, data: r.data })),
      configMap: cm && generatedView(cm),
      installNamespace: this.o.installNamespace,
      policy: policies && evaluateFederatedPolicy({ namespace: imp.namespace, clusterName: source, expirationSeconds: sai.spec.expirationSeconds }, policies, this.o.installNamespace),
    });
    switch (decision.action) {
      case 'wait':
        return { requeueAfterMs: decision.afterMs };
      case 'blocked':
        return this.block(imp, log, decision, undefined);
      case 'apply':
        await this.writeConfigMap(decision.configMap, signal);
        log.info('federated ConfigMap written', { why: decision.why, configMap: decision.configMap.metadata!.name });
        break;
      case 'ready':
        break;
    }
    const { audience } = decision.source;
    const { expirationSeconds } = decision;
    await this.writeStatus(imp, log, { status: 'True', reason: Reasons.Federated, message: federatedReadyMessage(imp, source, audience, expirationSeconds) }, undefined, false, { audience, expirationSeconds });
    return { requeueAfterMs: this.o.safetyRequeueMs };
  }

  /** The Secret and ConfigMap an import of that name would have, as cached (either may be absent). */
  private generatedOf(namespace: string, importName: string): Record<'Secret' | 'ConfigMap', { name: string; cached: CachedSecret | CachedConfigMap | undefined; view: GeneratedObjectView | undefined }> {
    const secretName = secretNameForImport(importName);
    const configMapName = configMapNameForImport(importName);
    const secret = this.o.secrets.get(`${namespace}/${secretName}`);
    const cm = this.o.configMaps.get(`${namespace}/${configMapName}`);
    return {
      Secret: { name: secretName, cached: secret, view: secret && secretGeneratedView(secret) },
      ConfigMap: { name: configMapName, cached: cm, view: cm && generatedView(cm) },
    };
  }

  /** Deletes a generated object (`resourceVersion`: only that version); a failure is retried with backoff, `what` saying whose. */
  private async deleteGeneratedOrRetry(kind: 'Secret' | 'ConfigMap', namespace: string, name: string, what: string, signal: AbortSignal, resourceVersion?: string): Promise<void> {
    try {
      await this.o.effects.deleteGenerated(kind, namespace, name, signal, resourceVersion);
    } catch (e) {
      throw new RetryableError(`deleting ${kind} ${namespace}/${name}, ${what}, failed: ${describeError(e)}`);
    }
  }

  /** The Secret and ConfigMap of an import that no longer exists: deleted (`orphansOf`). */
  private async removeOrphans(key: string, signal: AbortSignal): Promise<ReconcileResult> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const generated = this.generatedOf(namespace, key.slice(slash + 1));
    // Until the imports are listed, "no such import" means nothing: look again shortly.
    if (!this.o.imports.synced) return generated.Secret.cached || generated.ConfigMap.cached ? { requeueAfterMs: 1_000 } : undefined;
    const orphans = orphansOf(generated.Secret.view, generated.ConfigMap.view);
    if (orphans.length === 0) return undefined;
    // The cache may not have seen an import re-created under this name whose new Secret it has
    // already seen (a registration removed and written again): ask the API server who exists now.
    let live: string | undefined;
    try {
      live = await this.o.effects.liveImportUid(namespace, key.slice(slash + 1), signal);
    } catch (e) {
      throw new RetryableError(`reading import ${key} before deleting what it left failed: ${describeError(e)}`);
    }
    if (live !== undefined && orphans.some((kind) => generated[kind].view?.controllerUid === live)) return { requeueAfterMs: 1_000 };
    for (const kind of orphans) {
      const { name, cached } = generated[kind];
      // Only the version seen owned: a Secret the garbage collector has just orphaned (kubectl delete --cascade=orphan) conflicts instead.
      await this.deleteGeneratedOrRetry(kind, namespace, name, `of deleted import ${key}`, signal, cached?.resourceVersion);
      this.o.logger.info('deleted the object of a deleted import', { key, kind, name });
    }
    return undefined;
  }

  /** The Secret of an import switched to Federated, or the ConfigMap of one switched to Token: deleted (`leftoverOf`). */
  private async removeLeftover(imp: CachedImport, log: Logger, signal: AbortSignal): Promise<void> {
    const generated = this.generatedOf(imp.namespace, imp.name);
    const kind = leftoverOf(isFederatedImport(imp.sai), imp.uid, generated.Secret.view, generated.ConfigMap.view);
    if (!kind) return;
    const { name } = generated[kind];
    await this.deleteGeneratedOrRetry(kind, imp.namespace, name, "left over from the import's previous mode", signal);
    log.info('deleted the object of the previous mode', { kind, name, mode: imp.sai.spec.mode ?? 'Token' });
  }

  /** Server-side apply of a federated import's ConfigMap; the answer recorded in the cache (read-your-writes). */
  private async writeConfigMap(desired: V1ConfigMap, signal: AbortSignal): Promise<void> {
    let written: unknown;
    try {
      written = await this.o.effects.applyConfigMap(desired, signal);
    } catch (e) {
      throw new RetryableError(`writing ConfigMap ${desired.metadata!.namespace!}/${desired.metadata!.name!} failed: ${describeError(e)}`);
    }
    try {
      this.o.configMaps.recordWrite(projectConfigMap(written));
    } catch {
      // An answer that does not decode as a ConfigMap: the watch will tell.
    }
  }

  private async mintAndWrite(imp: CachedImport, sai: TokenImport, log: Logger, decision: Extract<Decision, { action: 'mint' }>, cluster: ClusterView, remote: RemoteServiceAccountView, secret: CachedSecret | undefined, signal: AbortSignal): Promise<ReconcileResult> {
    const { spec } = sai;
    const { why, request } = decision;
    let minted: MintResult;
    try {
      minted = await this.mint(sai, remote, request, signal);
      this.o.metrics.tokenRequests.inc({ cluster: cluster.name, result: 'ok' });
      this.o.registry.get(cluster.name)?.noteCallSuccess();
    } catch (e) {
      this.o.metrics.tokenRequests.inc({ cluster: cluster.name, result: String(httpStatusOf(e) ?? 'error') });
      // The cluster's other imports wait with this one instead of each calling a sick source (not when we aborted it: shutdown).
      if (!signal.aborted && failureIsTheCluster(httpStatusOf(e))) this.o.registry.get(cluster.name)?.noteCallFailure(`TokenRequest failed: ${describeError(e)}`, httpStatusOf(e));
      const { reason, retry, hint } = tokenRequestFailure(httpStatusOf(e), statusDetailsKind(e), request);
      const message = `TokenRequest for ServiceAccount ${spec.namespace}/${spec.name} in cluster "${cluster.name}" failed: ${hint ?? describeError(e)}`;
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
    await this.writeStatus(imp, log, { status: 'True', reason: Reasons.TokenIssued, message: readyMessage(imp, sai, minted.expiration) }, minted.expiration, true);
    const refreshAt = refreshTime(`${imp.namespace}/${imp.name}`, minted.issued, minted.expiration, this.o.refreshRatio, this.o.maxRefreshIntervalMs);
    return { requeueAfterMs: Math.max(0, refreshAt.getTime() - this.now().getTime()) };
  }

  private async mint(sai: TokenImport, remote: RemoteServiceAccountView, request: TokenRequestPlan, signal: AbortSignal): Promise<MintResult> {
    const { spec } = sai;
    const tr = await this.o.effects.requestToken(spec.clusterName, spec.namespace, spec.name, request, signal);
    const receivedAt = this.now();
    const token = tr.token;
    const c = readTokenClaims(token);
    const { issued, expiration } = localTokenTimes(receivedAt, c.issuedAt, tr.expirationTimestamp, request.expirationSeconds);
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
    let written: unknown;
    try {
      written = await this.o.effects.applySecret(desired, signal);
    } catch (e) {
      const message = `writing Secret ${ns}/${name} failed: ${describeError(e)}`;
      if (secretWriteRefusedForGood(httpStatusOf(e))) throw new SecretRejectedError(message);
      throw new RetryableError(message);
    }
    // Every reader of the cache sees what was written until the watch delivers it.
    try {
      this.o.secrets.recordWrite(this.projectSecret(written));
    } catch {
      // An answer that does not decode as a Secret: the watch will tell.
    }
  }

  private secretView(s: CachedSecret, imp: CachedImport): SecretView {
    const a = s.annotations;
    const date = (v: string | undefined) => (v && !Number.isNaN(Date.parse(v)) ? new Date(v) : undefined);
    return {
      intact: s.dataIntact && s.importName === imp.name && s.controllerUid === imp.uid,
      foreign: s.foreignController,
      fingerprint: a[SecretAnnotations.fingerprint],
      remoteUid: a[SecretAnnotations.remoteUid],
      rotation: a[SecretAnnotations.rotation],
      issued: date(a[SecretAnnotations.issued]),
      expiration: date(a[SecretAnnotations.expiration]),
      ...(s.credential ? { endpoint: { server: s.credential.server, caPem: s.credential.caPem } } : {}),
    };
  }

  private async block(imp: CachedImport, log: Logger, d: Extract<Decision, { action: 'blocked' }>, secret: CachedSecret | undefined): Promise<ReconcileResult> {
    const expiration = secret?.annotations[SecretAnnotations.expiration];
    await this.writeStatus(imp, log, { status: 'False', reason: d.reason, message: d.message }, expiration ? new Date(expiration) : undefined, secret !== undefined);
    if (d.retry === 'backoff') throw new RetryableError(d.message);
    if (d.retry === 'event') return { requeueAfterMs: this.o.safetyRequeueMs };
    return;
  }

  private async writeStatus(
    imp: CachedImport,
    log: Logger,
    ready: { status: 'True' | 'False'; reason: Reason; message: string },
    expiration: Date | undefined,
    secretExists: boolean,
    federated?: { audience: string; expirationSeconds: number },
  ): Promise<void> {
    const current = imp.sai.status ?? {};
    const previous = readyCondition({ status: current });
    // Messages carry text from source clusters: bounded and redacted once more, whatever built them.
    const message = boundedLine(ready.message);
    const next: Omit<Condition, 'lastTransitionTime'> = { type: READY, ...ready, message, observedGeneration: imp.generation };
    // The fields of the other mode (an import switched between Token and Federated) go.
    const remove = (isFederatedImport(imp.sai) ? TOKEN_STATUS_FIELDS : FEDERATED_STATUS_FIELDS).filter((k) => current[k] !== undefined);
    const kept: ImportStatus = Object.fromEntries(Object.entries(current).filter(([k]) => !remove.includes(k as keyof ImportStatus)));
    const status: ImportStatus = {
      ...kept,
      conditions: setCondition(current.conditions, next, this.now()),
      observedGeneration: imp.generation,
      ...(secretExists ? { secrets: [{ name: secretNameForImport(imp.name) }] } : {}),
      ...(expiration ? { expirationTimestamp: rfc3339(expiration) } : {}),
      ...(federated ?? {}),
    };
    if (isDeepStrictEqual(status, current)) return;
    let written: unknown;
    try {
      written = await (remove.length > 0 ? this.o.effects.patchStatus(imp.namespace, imp.name, status, remove) : this.o.effects.patchStatus(imp.namespace, imp.name, status));
    } catch (e) {
      if (httpStatusOf(e) === 404) return; // deleted meanwhile
      throw new RetryableError(`writing status of ${IMPORT_KIND} ${imp.namespace}/${imp.name} failed: ${describeError(e)}`);
    }
    try {
      this.o.imports.recordWrite(projectImport(written));
    } catch {
      // An answer that does not decode as an import: the watch will tell.
    }
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

/** What the reconciler tells decisions about a generated Secret in its cache (who controls it). */
function secretGeneratedView(o: CachedSecret): GeneratedObjectView {
  return { foreign: o.foreignController, ...(o.controllerUid !== undefined ? { controllerUid: o.controllerUid } : {}) };
}

/** What the reconciler tells decisions about a generated ConfigMap in its cache (who controls it, its data). */
function generatedView(o: CachedConfigMap): GeneratedObjectView {
  return { foreign: o.foreignController, dataHash: o.dataHash, ...(o.controllerUid !== undefined ? { controllerUid: o.controllerUid } : {}) };
}

function federatedReadyMessage(imp: CachedImport, source: string, audience: string, expirationSeconds: number): string {
  return `pods get their own ServiceAccount token for federated source "${source}" (audience ${audience}, lifetime ${expirationSeconds}s) with its server and CA from ConfigMap ${configMapNameForImport(imp.name)}`;
}

function readyMessage(imp: CachedImport, sai: TokenImport, expiration: Date): string {
  const s = sai.spec;
  return `token for ServiceAccount ${s.namespace}/${s.name} in cluster "${s.clusterName}" is in Secret ${secretNameForImport(imp.name)}; it expires at ${rfc3339(expiration)} and is refreshed before`;
}
