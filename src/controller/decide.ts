import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { Reasons, type Reason, type FederatedImport, type TokenImport, MAX_EXPIRATION_SECONDS, MAX_FEDERATED_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS } from '../api/import.js';
import { FEDERATED_SOURCE_LABEL } from '../constants.js';
import { buildFederatedConfigMap, configMapDataHash, parseFederatedSource, type FederatedSource } from '../federation/imports.js';
import { anchorFor, coveringGrant, describeGrant, type Grant } from '../consent/grants.js';
import type { PolicyVerdict } from '../consent/policy.js';
import { dns1123LabelError, dns1123SubdomainError } from '../naming.js';

/** What the controller knows of a source cluster. */
export interface ClusterView {
  name: string;
  server: string;
  caPem: string;
  /** The cluster's watches are connected (false while its API server cannot be reached). */
  reachable: boolean;
  lastError?: string;
  /** The HTTP status of the last watch failure, when the server answered (401: credentials refused). */
  lastStatusCode?: number;
  /** False until the cluster's first watch connected or failed: `reachable` is only a guess before. */
  settled: boolean;
  /**
   * What the source granted to this cluster (read from its importer ServiceAccount): undefined
   * for a `--kubeconfig` development cluster, whose credentials are the operator's own.
   */
  consent?: SourceConsent;
  /** When the registration's own token expires (registration clusters). */
  credentialExpiration?: Date;
}

/** The source's grants to this target, as the controller's watch of its importer sees them. */
export interface SourceConsent {
  /** The importer ServiceAccount's name: the target cluster's name in the source. */
  importer: string;
  /** undefined until the importer ServiceAccount is in the watch cache. */
  grants: Grant[] | undefined;
}

/** The remote ServiceAccount as the watch cache sees it. */
export type RemoteServiceAccountView =
  | { state: 'present'; uid: string }
  | { state: 'absent' }
  /** Not cached (not synced yet, or the importer may not list there): TokenRequest will tell. */
  | { state: 'unknown' };

/** The generated Secret as the cache sees it (projected: no token kept in the cache). */
export interface SecretView {
  /** The Secret's data hashes to the value recorded when it was written, labels and owner are right. */
  intact: boolean;
  /** Controlled by an object that is not a ServiceAccountImport: never overwritten. */
  foreign?: boolean;
  fingerprint?: string;
  remoteUid?: string;
  rotation?: string;
  issued?: Date;
  expiration?: Date;
  /**
   * Registrations: the server and CA the Secret's own credential names. The registry builds the
   * registration's cluster from this Secret, so a cluster view that names another endpoint is a
   * registry that has not caught up yet (never a reason to mint).
   */
  endpoint?: { server: string; caPem: string };
}

interface DecideInput {
  key: string;
  /** `namespace/name` of the import's Secret (named in messages). */
  secretKey: string;
  sai: TokenImport;
  cluster: ClusterView | undefined;
  remote: RemoteServiceAccountView;
  secret: SecretView | undefined;
  /** Fingerprint of what a token minted now would be for (spec, server, CA). */
  fingerprint: string;
  /** Value of the import's rotation annotation, if any. */
  rotation: string | undefined;
  now: Date;
  /** Refresh at this fraction of the granted lifetime (before jitter). */
  refreshRatio: number;
  /** Refresh no later than this after issue, if set (operators' and tests' cap). */
  maxRefreshIntervalMs?: number;
  /** The import is a registration (it lives in the install namespace). */
  registration: boolean;
  /** The target's policy verdict for this import (src/consent/policy.ts); undefined until the policies are listed. */
  policy: PolicyVerdict | undefined;
}

/** What to ask the source for: the lifetime and audiences the policy allows, bound to the grant's anchor. */
export interface TokenRequestPlan {
  expirationSeconds: number;
  audiences: string[];
  /** The anchor Secret (in the ServiceAccount's namespace) the token is bound to; none for registrations and cluster-wide grants. */
  boundSecret?: string;
  /** Its UID as the grant recorded it: the source refuses (409) if the Secret of that name is another one. */
  boundSecretUid?: string;
}

export type Decision =
  /** Mint a new token and write the Secret. */
  | { action: 'mint'; why: string; request: TokenRequestPlan; fingerprint: string }
  /** Nothing is known yet that a decision could rest on: look again after `afterMs`, write nothing. */
  | { action: 'wait'; afterMs: number; why: string }
  /** The Secret is current: report Ready and come back at `refreshAt`. */
  | { action: 'ready'; refreshAt: Date; expiration: Date }
  /** Cannot proceed; the Secret is left as it is. */
  | { action: 'blocked'; reason: Reason; message: string; retry: RetryPolicy };

/**
 * How a blocked import comes back: `event` when a watch will re-trigger it (a registration or a
 * ServiceAccount appearing, a cluster becoming reachable), `backoff` for transient failures, or
 * `never` until its spec changes.
 */
type RetryPolicy = 'event' | 'backoff' | 'never';

function specProblems(sai: TokenImport): string[] {
  const problems: string[] = [];
  const check = (field: string, err: string | undefined) => err && problems.push(`spec.${field} ${err}`);
  check('clusterName', dns1123SubdomainError(sai.spec.clusterName));
  check('namespace', dns1123LabelError(sai.spec.namespace));
  check('name', dns1123SubdomainError(sai.spec.name));
  const exp = sai.spec.expirationSeconds;
  if (exp !== undefined && (!Number.isInteger(exp) || exp < MIN_EXPIRATION_SECONDS || exp > MAX_EXPIRATION_SECONDS))
    problems.push(`spec.expirationSeconds must be an integer from ${MIN_EXPIRATION_SECONDS} to ${MAX_EXPIRATION_SECONDS} (is ${exp})`);
  if (sai.spec.audiences?.some((a) => a.length === 0)) problems.push('spec.audiences must not contain empty strings');
  return problems;
}

/** A deterministic jitter in [-0.05, 0.05] per key and token, so refreshes of many imports spread out. */
function refreshJitter(key: string, issued: Date): number {
  const h = createHash('sha256').update(`${key}@${issued.toISOString()}`).digest();
  return (h.readUInt16BE(0) / 0xffff - 0.5) / 10;
}

/**
 * The soonest a token is refreshed after it was received: whatever a source claims about
 * lifetimes (a skewed clock, a cap far below what was asked), the controller never mints for one
 * import more often than this.
 */
const MIN_REFRESH_AFTER_MS = 60_000;

/** The controller's default `--refresh-ratio`, and kubemcsa's rule for registration tokens. */
export const DEFAULT_REFRESH_RATIO = 0.6;

/**
 * When a token received at `issued` (local clock) and expiring at `expiration` (local clock:
 * receive time plus the granted duration) should be refreshed: at `ratio` of its lifetime,
 * jittered, never sooner than MIN_REFRESH_AFTER_MS after issue, and no later than the operator's
 * `maxIntervalMs`.
 */
export function refreshTime(key: string, issued: Date, expiration: Date, ratio: number, maxIntervalMs?: number): Date {
  const lifetime = expiration.getTime() - issued.getTime();
  let after = Math.max(MIN_REFRESH_AFTER_MS, lifetime * (ratio + refreshJitter(key, issued)));
  // The operator's explicit cap (a flag, not something a source says) may go below the floor.
  if (maxIntervalMs !== undefined) after = Math.min(after, maxIntervalMs);
  return new Date(issued.getTime() + Math.max(0, after));
}

/**
 * The granted lifetime of a token, from the source's own two timestamps (its `iat` claim and the
 * TokenRequest's expirationTimestamp, both on the source's clock, so a skewed clock cancels out),
 * and the local times it is valid from and to. Without a usable `iat`, the requested lifetime
 * bounds the granted one.
 */
export function localTokenTimes(receivedAt: Date, sourceIssuedAt: Date | undefined, sourceExpiration: Date, requestedSeconds: number): { issued: Date; expiration: Date } {
  const requestedMs = requestedSeconds * 1000;
  const granted = sourceIssuedAt ? sourceExpiration.getTime() - sourceIssuedAt.getTime() : requestedMs;
  const lifetime = Math.min(requestedMs, Number.isFinite(granted) && granted > 0 ? granted : requestedMs);
  return { issued: receivedAt, expiration: new Date(receivedAt.getTime() + lifetime) };
}

/**
 * What to ask the source for, and the fingerprint the resulting Secret carries: the policy's
 * lifetime and audiences, bound to the covering grant's anchor (none for registrations,
 * development clusters and cluster-wide grants). The grant is part of the fingerprint: a token
 * minted under another grant, or under this grant before it was revoked and given again (a new
 * anchor UID), is replaced.
 */
export function tokenRequestFor(baseFingerprint: string, policy: { expirationSeconds: number; audiences: string[] }, covering: { importer: string; grant: Grant } | undefined): { request: TokenRequestPlan; fingerprint: string } {
  const anchor = covering && anchorFor(covering.importer, covering.grant);
  const request: TokenRequestPlan = {
    expirationSeconds: policy.expirationSeconds,
    audiences: policy.audiences,
    ...(anchor ? { boundSecret: anchor.name } : {}),
    ...(anchor?.uid ? { boundSecretUid: anchor.uid } : {}),
  };
  if (!covering) return { request, fingerprint: baseFingerprint };
  const tag = `${describeGrant(covering.grant)}${anchor ? ` bound to Secret ${anchor.name} (${anchor.uid ?? 'uid not recorded'})` : ''}\n${request.expirationSeconds}`;
  return { request, fingerprint: `${baseFingerprint}+${createHash('sha256').update(tag).digest('hex').slice(0, 16)}` };
}

/** The exact command that restores a registration (run where both clusters' kubeconfig contexts are). */
function restoreCommand(clusterName: string, targetName: string): string {
  return `kubemcsa bootstrap --target-context <context of this cluster> --target-name ${targetName} --source-context <context of ${clusterName}> --source-name ${clusterName}`;
}

/**
 * What holds any import before its mode's own checks, in this order: an invalid spec, its
 * generated object controlled by another owner, then the target's consent (a refused import costs
 * the source nothing; until the policies are listed nothing is decided, since a policy may forbid
 * what the defaults allow).
 */
function heldBeforeTheMode(
  problems: string[],
  conflict: { reason: Reason; what: string } | undefined,
  policy: PolicyVerdict | undefined,
): { held: Extract<Decision, { action: 'blocked' | 'wait' }> } | { allowed: Extract<PolicyVerdict, { allowed: true }> } {
  if (problems.length > 0) return { held: { action: 'blocked', reason: Reasons.InvalidSpec, message: problems.join('; '), retry: 'never' } };
  if (conflict) return { held: { action: 'blocked', reason: conflict.reason, message: `${conflict.what} exists and is controlled by another object; delete or rename it`, retry: 'event' } };
  if (!policy) return { held: { action: 'wait', afterMs: 1_000, why: 'the ServiceAccountImportPolicies are not listed yet' } };
  if (!policy.allowed) return { held: { action: 'blocked', reason: Reasons.Forbidden, message: policy.message, retry: 'event' } };
  return { allowed: policy };
}

/**
 * The controller's decision for one import, from the state folded out of its watches. Pure:
 * the reconcile turns it into API calls.
 */
export function decide(i: DecideInput): Decision {
  const { sai } = i;
  const pre = heldBeforeTheMode(specProblems(sai), i.secret?.foreign ? { reason: Reasons.SecretConflict, what: `Secret ${i.secretKey}` } : undefined, i.policy);
  if ('held' in pre) return pre.held;
  const policy = pre.allowed;

  const cluster = i.cluster;
  if (!cluster) {
    return {
      action: 'blocked',
      reason: Reasons.ClusterNotFound,
      message: `cluster "${sai.spec.clusterName}" is not registered (no ServiceAccountImport of that name in the install namespace, and no such kubeconfig context); run kubemcsa bootstrap for it`,
      retry: 'event',
    };
  }
  const expired = i.registration && i.secret?.expiration !== undefined && i.secret.expiration <= i.now;
  if (expired) {
    return {
      action: 'blocked',
      reason: Reasons.TokenExpired,
      message:
        `the registration's token for cluster "${cluster.name}" expired at ${i.secret!.expiration!.toISOString()} (the controller was not running to refresh it) ` +
        `and cannot be renewed with itself; restore it with: ${restoreCommand(cluster.name, sai.spec.name)}`,
      retry: 'event',
    };
  }
  // A new or re-pointed endpoint: wait for its first connection attempt rather than report Ready
  // on a guess. Its first health event requeues every import of the cluster; the delay is only a
  // fallback. (Polling every second instead cost healthy clusters' imports tens of milliseconds:
  // the imports of clusters registered together all came back in the same millisecond, once a
  // second, until their sources answered, up to 10 s for one that never does.)
  if (!cluster.settled) return { action: 'wait', afterMs: 15_000, why: `cluster "${cluster.name}" has not answered its first watch yet` };
  // A registration's Secret re-pointed (kubemcsa bootstrap with another server or CA) and the
  // registry still serves the old endpoint: minting now would write the old endpoint back over
  // the operator's change. The registry follows the same Secret change and requeues the import.
  const endpoint = i.registration && i.secret?.intact ? i.secret.endpoint : undefined;
  if (endpoint && (endpoint.server !== cluster.server || endpoint.caPem.trim() !== cluster.caPem.trim())) {
    return { action: 'wait', afterMs: 1_000, why: `cluster "${cluster.name}" is not yet re-pointed to the endpoint its registration's Secret names` };
  }
  if (!cluster.reachable) {
    const until = i.secret?.expiration ? `; the token in the Secret stays valid until ${i.secret.expiration.toISOString()}` : '';
    if (cluster.lastStatusCode === 401) {
      const lapsed = cluster.credentialExpiration !== undefined && cluster.credentialExpiration <= i.now;
      const why = lapsed ? `its registration's token expired at ${cluster.credentialExpiration!.toISOString()}` : `it refuses the registration's credentials: ${cluster.lastError ?? 'HTTP 401'}`;
      return {
        action: 'blocked',
        reason: lapsed ? Reasons.TokenExpired : Reasons.Unauthorized,
        message: `cluster "${cluster.name}" (${cluster.server}): ${why}; re-run kubemcsa bootstrap for it${until}`,
        retry: 'event',
      };
    }
    return {
      action: 'blocked',
      reason: Reasons.ClusterUnreachable,
      message: `cluster "${cluster.name}" (${cluster.server}) is unreachable: ${cluster.lastError ?? 'watch disconnected'}${until}`,
      retry: 'event',
    };
  }
  if (i.remote.state === 'absent') {
    return {
      action: 'blocked',
      reason: Reasons.ServiceAccountNotFound,
      message: `ServiceAccount ${sai.spec.namespace}/${sai.spec.name} not found in cluster "${cluster.name}"`,
      retry: 'event',
    };
  }

  // The source's consent: registrations mint their own importer's token (the bootstrap's self
  // grant); everything else needs a grant recorded for this target, and is bound to its anchor.
  let covering: { importer: string; grant: Grant } | undefined;
  if (!i.registration && cluster.consent) {
    const { importer, grants } = cluster.consent;
    if (grants === undefined) return { action: 'wait', afterMs: 1_000, why: `the grants of cluster "${cluster.name}" are not known yet` };
    const grant = coveringGrant(grants, sai.spec.namespace, sai.spec.name);
    if (!grant) {
      return {
        action: 'blocked',
        reason: Reasons.Forbidden,
        message:
          `ServiceAccount ${sai.spec.namespace}/${sai.spec.name} of cluster "${cluster.name}" is not granted to this cluster ("${importer}" there); ` +
          `an admin of "${cluster.name}" can grant it with: kubemcsa grant ${sai.spec.name} -n ${sai.spec.namespace} --target-name ${importer} --source-context <context of ${cluster.name}>`,
        retry: 'event',
      };
    }
    covering = { importer, grant };
  }
  const { request, fingerprint } = tokenRequestFor(i.fingerprint, policy, covering);

  const mint = (why: string): Decision => ({ action: 'mint', why, request, fingerprint });
  const s = i.secret;
  if (!s) return mint('no Secret yet');
  if (!s.intact) return mint('the Secret was changed or is incomplete');
  if (!s.issued || !s.expiration) return mint('the Secret has no token times');
  if (s.fingerprint !== fingerprint) return mint('the spec, server, CA or grant changed');
  if (i.remote.state === 'present' && s.remoteUid !== i.remote.uid) return mint('the remote ServiceAccount was recreated');
  if ((i.rotation ?? '') !== (s.rotation ?? '')) return mint('rotation requested');
  const refreshAt = refreshTime(i.key, s.issued, s.expiration, i.refreshRatio, i.maxRefreshIntervalMs);
  if (i.now >= refreshAt) return mint('refresh due');
  return { action: 'ready', refreshAt, expiration: s.expiration };
}

/** What a failed TokenRequest means for the import: its reason, how it comes back, and a hint for the message. */
interface TokenRequestFailure {
  reason: Reason;
  retry: 'event' | 'backoff';
  hint?: string;
}

/**
 * Maps a failed TokenRequest to the import's reason. `status` is the HTTP status (undefined when
 * no answer came: network, TLS or deadline), `detailsKind` the Status body's `details.kind` (which
 * kind of object was not found).
 */
export function tokenRequestFailure(status: number | undefined, detailsKind: string | undefined, request: TokenRequestPlan): TokenRequestFailure {
  // The grant's anchor is gone (revoked, or the grant is incomplete): the grant no longer holds.
  if (status === 404 && request.boundSecret && detailsKind === 'secrets') {
    return { reason: Reasons.Forbidden, retry: 'event', hint: `the grant's anchor Secret ${request.boundSecret} is missing in the source (revoked or incomplete grant; re-run kubemcsa grant)` };
  }
  if (status === 409 && request.boundSecretUid) {
    return { reason: Reasons.Forbidden, retry: 'event', hint: `the grant's anchor Secret ${request.boundSecret} in the source is not the one the grant recorded (re-run kubemcsa grant)` };
  }
  if (status === 404) return { reason: Reasons.ServiceAccountNotFound, retry: 'event' };
  // 403 and 401 are retried with backoff: RBAC and authentication caches lag after a change.
  if (status === 403) return { reason: Reasons.Forbidden, retry: 'backoff' };
  if (status === 401) return { reason: Reasons.Unauthorized, retry: 'backoff' };
  if (status === 400 || status === 422) return { reason: Reasons.TokenRequestFailed, retry: 'backoff' };
  return { reason: Reasons.ClusterUnreachable, retry: 'backoff' };
}

/**
 * Whether a failed call to a source says the cluster is sick (no answer at all, a 5xx, throttling)
 * rather than something about this import: then the cluster's other imports stop calling it for a
 * while too, instead of each waiting out its own deadline.
 */
export function failureIsTheCluster(status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500;
}

/**
 * Whether the target refused a Secret write in a way no retry cures (400 Bad Request, 422
 * Invalid): the import is blocked with SecretRejected instead of minting again and discarding
 * another token. Anything else (403 while RBAC caches lag, 409, 5xx, no answer) is retried.
 */
export function secretWriteRefusedForGood(status: number | undefined): boolean {
  return status === 400 || status === 422;
}

/** A federated source record as the controller's cache holds it (a ConfigMap in the install namespace). */
interface FederatedRecordView {
  /** `namespace/name` of the ConfigMap (named in messages). */
  key: string;
  data: Record<string, string> | undefined;
}

/** What the controller's cache holds of a generated object (the import's ConfigMap, or its Secret). */
export interface GeneratedObjectView {
  /** UID of the ServiceAccountImport that controls it, if one does. */
  controllerUid?: string;
  /** Controlled by an object that is not a ServiceAccountImport: never overwritten. */
  foreign: boolean;
  /** Hash of its data as it is (`configMapDataHash`); ConfigMaps only. */
  dataHash?: string;
}

interface FederatedDecideInput {
  sai: FederatedImport;
  /** `namespace/name` of the import's ConfigMap (named in messages). */
  configMapKey: string;
  /** The records labelled with the import's `clusterName` (one, normally). */
  records: FederatedRecordView[];
  configMap: GeneratedObjectView | undefined;
  /** The install namespace (named in messages). */
  installNamespace: string;
  /** The target's verdict (`evaluateFederatedPolicy`); undefined until the policies are listed. */
  policy: PolicyVerdict | undefined;
}

export type FederatedDecision =
  /** Nothing is known yet that a decision could rest on. */
  | { action: 'wait'; afterMs: number; why: string }
  /** Cannot proceed; the ConfigMap is left as it is. */
  | { action: 'blocked'; reason: Reason; message: string; retry: RetryPolicy }
  /** Write `configMap` (server-side apply), then report Ready. */
  | { action: 'apply'; why: string; configMap: V1ConfigMap; source: FederatedSource; expirationSeconds: number }
  /** The ConfigMap is current: report Ready with the audience and lifetime the webhook mounts. */
  | { action: 'ready'; source: FederatedSource; expirationSeconds: number };

function federatedSpecProblems(sai: FederatedImport): string[] {
  const problems: string[] = [];
  const clusterErr = dns1123SubdomainError(sai.spec.clusterName);
  if (clusterErr) problems.push(`spec.clusterName ${clusterErr}`);
  const exp = sai.spec.expirationSeconds;
  if (exp !== undefined && (!Number.isInteger(exp) || exp < MIN_EXPIRATION_SECONDS || exp > MAX_FEDERATED_EXPIRATION_SECONDS))
    problems.push(`spec.expirationSeconds of a federated import must be an integer from ${MIN_EXPIRATION_SECONDS} to ${MAX_FEDERATED_EXPIRATION_SECONDS} (is ${exp})`);
  return problems;
}

/**
 * The controller's decision for a federated import (ADR 0022): nothing is minted and nothing is
 * sent to the source; the import needs the target's consent (policy), its source's record, and a
 * ConfigMap in its namespace built from that record. Pure, like `decide`.
 */
export function decideFederated(i: FederatedDecideInput): FederatedDecision {
  const { sai } = i;
  const name = sai.metadata.name;
  const pre = heldBeforeTheMode(federatedSpecProblems(sai), i.configMap?.foreign ? { reason: Reasons.ConfigMapConflict, what: `ConfigMap ${i.configMapKey}` } : undefined, i.policy);
  if ('held' in pre) return pre.held;
  const source = sai.spec.clusterName;
  if (i.records.length === 0) {
    return {
      action: 'blocked',
      reason: Reasons.ClusterNotFound,
      message: `federated source "${source}" is not known (no ConfigMap labelled ${FEDERATED_SOURCE_LABEL}=${source} in namespace ${i.installNamespace}); run kubemcsa federate for it`,
      retry: 'event',
    };
  }
  if (i.records.length > 1) {
    const keys = i.records.map((r) => r.key).sort();
    return {
      action: 'blocked',
      reason: Reasons.InvalidFederatedSource,
      message: `federated source "${source}" has ${keys.length} records (ConfigMaps ${keys.join(', ')} are all labelled ${FEDERATED_SOURCE_LABEL}=${source}); keep one`,
      retry: 'event',
    };
  }
  const record = i.records[0]!;
  const parsed = parseFederatedSource(record.data);
  if (!parsed.ok) {
    return {
      action: 'blocked',
      reason: Reasons.InvalidFederatedSource,
      message: `the record of federated source "${source}", ConfigMap ${record.key}, is invalid: ${parsed.problems.join('; ')}`,
      retry: 'event',
    };
  }
  const expirationSeconds = pre.allowed.expirationSeconds;
  const desired = buildFederatedConfigMap({ importName: name, importNamespace: sai.metadata.namespace ?? '', importUid: sai.metadata.uid ?? '', source: parsed.source });
  const cm = i.configMap;
  const apply = (why: string): FederatedDecision => ({ action: 'apply', why, configMap: desired, source: parsed.source, expirationSeconds });
  if (!cm) return apply('no ConfigMap yet');
  if (cm.controllerUid !== sai.metadata.uid) return apply('the ConfigMap is not controlled by this import');
  if (cm.dataHash !== configMapDataHash(desired.data)) return apply('the ConfigMap was changed, or the source record changed');
  return { action: 'ready', source: parsed.source, expirationSeconds };
}

/**
 * The generated object of the other mode that an import switched between Token and Federated
 * leaves behind, when this import controls it: deleted (a Secret would keep a valid token until
 * it expires). Objects controlled by something else are never touched.
 */
export function leftoverOf(federated: boolean, importUid: string, secret: GeneratedObjectView | undefined, configMap: GeneratedObjectView | undefined): 'Secret' | 'ConfigMap' | undefined {
  const ours = (o: GeneratedObjectView | undefined) => o !== undefined && !o.foreign && o.controllerUid === importUid;
  if (federated && ours(secret)) return 'Secret';
  if (!federated && ours(configMap)) return 'ConfigMap';
  return undefined;
}

/**
 * What an import that no longer exists (the imports listed, none of that name) leaves behind: the
 * Secret (whose token stays valid until it expires) and the ConfigMap it controlled, deleted at
 * once rather than left to the garbage collector, which may fail to resolve the owner once the CRD is
 * gone (an uninstall right after the deletion). Objects controlled by something else, or by
 * nothing, are never touched.
 */
export function orphansOf(secret: GeneratedObjectView | undefined, configMap: GeneratedObjectView | undefined): ('Secret' | 'ConfigMap')[] {
  const ownedByAnImport = (o: GeneratedObjectView | undefined) => o !== undefined && !o.foreign && o.controllerUid !== undefined;
  return [...(ownedByAnImport(secret) ? (['Secret'] as const) : []), ...(ownedByAnImport(configMap) ? (['ConfigMap'] as const) : [])];
}
