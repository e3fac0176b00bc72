import { ApiException, type V1Secret } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { Reasons, READY, readyCondition, type Condition, type ImportStatus, type Reason } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, IMPORT_KIND } from '../../src/constants.js';
import { conditionChanged, rfc3339, setCondition } from '../../src/controller/conditions.js';
import { decide, localTokenTimes, refreshTime, secretWriteRefusedForGood, tokenRequestFailure, type ClusterView, type Decision, type RemoteServiceAccountView, type SecretView, type TokenRequestPlan } from '../../src/controller/decide.js';
import { evaluatePolicy, isRegistration, type ImportPolicy } from '../../src/consent/policy.js';
import { boundedLine, describeError, httpStatusOf } from '../../src/describe-error.js';
import type { Logger } from '../../src/logger.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, mintFingerprint, SecretAnnotations } from '../../src/secret.js';
import type { SharedCache } from '../cache.js';
import { readTokenClaims } from '../../src/jwt.js';
import type { ReconcileResult } from '../workqueue.js';
import { EventRecorder } from './events.js';
import type { ControllerMetrics } from './metrics.js';
import { projectImport, projectSecret, type CachedImport, type CachedSecret } from './projections.js';
import type { ImportEffects } from './effects.js';
import type { RemoteCluster } from './remote-cluster.js';

/** What the reconciler reads of a source cluster (a `RemoteCluster`; tests give plain objects). */
type ClusterState = Pick<RemoteCluster, 'name' | 'spec' | 'reachable' | 'lastError' | 'lastStatusCode' | 'settled' | 'consent' | 'serviceAccount'>;

interface ReconcilerOptions {
  /** The API calls a reconcile makes (`kubeImportEffects` in production). */
  effects: ImportEffects;
  imports: SharedCache<CachedImport>;
  secrets: SharedCache<CachedSecret>;
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
    this.events = new EventRecorder((e) => o.effects.createEvent(e), o.logger);
    this.now = o.now ?? (() => new Date());
    this.projectSecret = projectSecret(o.installNamespace);
  }

  readonly reconcile = async (key: string, signal: AbortSignal): Promise<ReconcileResult> => {
    const imp = this.o.imports.get(key);
    // The owner reference lets the garbage collector delete the Secret.
    if (!imp || imp.deleting) return;
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
      this.o.metrics.tokenRequests.inc({ cluster: cluster.name, result: String(httpStatusOf(e) ?? 'error') });
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
    await this.writeStatus(imp, log, { status: 'True', reason: Reasons.TokenIssued, message: readyMessage(imp, minted.expiration) }, minted.expiration, true);
    const refreshAt = refreshTime(`${imp.namespace}/${imp.name}`, minted.issued, minted.expiration, this.o.refreshRatio, this.o.maxRefreshIntervalMs);
    return { requeueAfterMs: Math.max(0, refreshAt.getTime() - this.now().getTime()) };
  }

  private async mint(imp: CachedImport, remote: RemoteServiceAccountView, request: TokenRequestPlan, signal: AbortSignal): Promise<MintResult> {
    const { spec } = imp.sai;
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

  private async writeStatus(imp: CachedImport, log: Logger, ready: { status: 'True' | 'False'; reason: Reason; message: string }, expiration: Date | undefined, secretExists: boolean): Promise<void> {
    const current = imp.sai.status ?? {};
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
    let written: unknown;
    try {
      written = await this.o.effects.patchStatus(imp.namespace, imp.name, status);
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

function readyMessage(imp: CachedImport, expiration: Date): string {
  const s = imp.sai.spec;
  return `token for ServiceAccount ${s.namespace}/${s.name} in cluster "${s.clusterName}" is in Secret ${secretNameForImport(imp.name)}; it expires at ${rfc3339(expiration)} and is refreshed before`;
}
