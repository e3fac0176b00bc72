import { createHash } from 'node:crypto';
import { Reasons, type Reason, type ServiceAccountImport, MIN_EXPIRATION_SECONDS } from '../api/import.js';
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
  fingerprint?: string;
  remoteUid?: string;
  rotation?: string;
  issued?: Date;
  expiration?: Date;
}

export interface DecideInput {
  key: string;
  sai: ServiceAccountImport;
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
}

export type Decision =
  /** Mint a new token and write the Secret. */
  | { action: 'mint'; why: string }
  /** The Secret is current: report Ready and come back at `refreshAt`. */
  | { action: 'ready'; refreshAt: Date; expiration: Date }
  /** Cannot proceed; the Secret is left as it is. */
  | { action: 'blocked'; reason: Reason; message: string; retry: RetryPolicy };

/**
 * How a blocked import comes back: `event` when a watch will re-trigger it (a registration or a
 * ServiceAccount appearing, a cluster becoming reachable), `backoff` for transient failures, or
 * `never` until its spec changes.
 */
export type RetryPolicy = 'event' | 'backoff' | 'never';

export function specProblems(sai: ServiceAccountImport): string[] {
  const problems: string[] = [];
  const check = (field: string, err: string | undefined) => err && problems.push(`spec.${field} ${err}`);
  check('clusterName', dns1123SubdomainError(sai.spec.clusterName));
  check('namespace', dns1123LabelError(sai.spec.namespace));
  check('name', dns1123SubdomainError(sai.spec.name));
  const exp = sai.spec.expirationSeconds;
  if (exp !== undefined && (!Number.isInteger(exp) || exp < MIN_EXPIRATION_SECONDS))
    problems.push(`spec.expirationSeconds must be an integer of at least ${MIN_EXPIRATION_SECONDS} (is ${exp})`);
  if (sai.spec.audiences?.some((a) => a.length === 0)) problems.push('spec.audiences must not contain empty strings');
  return problems;
}

/** A deterministic jitter in [-0.05, 0.05] per key and token, so refreshes of many imports spread out. */
export function refreshJitter(key: string, issued: Date): number {
  const h = createHash('sha256').update(`${key}@${issued.toISOString()}`).digest();
  return (h.readUInt16BE(0) / 0xffff - 0.5) / 10;
}

/** When a token issued at `issued` and expiring at `expiration` should be refreshed. */
export function refreshTime(key: string, issued: Date, expiration: Date, ratio: number, maxIntervalMs?: number): Date {
  const lifetime = expiration.getTime() - issued.getTime();
  let after = lifetime * (ratio + refreshJitter(key, issued));
  if (maxIntervalMs !== undefined) after = Math.min(after, maxIntervalMs);
  return new Date(issued.getTime() + Math.max(0, after));
}

/**
 * The controller's decision for one import, from the state folded out of its watches. Pure:
 * the reconcile turns it into API calls.
 */
export function decide(i: DecideInput): Decision {
  const { sai } = i;
  const problems = specProblems(sai);
  if (problems.length > 0) return { action: 'blocked', reason: Reasons.InvalidSpec, message: problems.join('; '), retry: 'never' };

  if (!i.cluster) {
    return {
      action: 'blocked',
      reason: Reasons.ClusterNotFound,
      message: `cluster "${sai.spec.clusterName}" is not registered (no ServiceAccountImport of that name in the install namespace, and no such kubeconfig context); run kubemcsa bootstrap for it`,
      retry: 'event',
    };
  }
  if (!i.cluster.reachable) {
    const until = i.secret?.expiration ? `; the token in the Secret stays valid until ${i.secret.expiration.toISOString()}` : '';
    if (i.cluster.lastStatusCode === 401) {
      return {
        action: 'blocked',
        reason: Reasons.Unauthorized,
        message: `cluster "${i.cluster.name}" (${i.cluster.server}) refuses the registration's credentials: ${i.cluster.lastError ?? 'HTTP 401'}; re-run kubemcsa bootstrap for it${until}`,
        retry: 'event',
      };
    }
    return {
      action: 'blocked',
      reason: Reasons.ClusterUnreachable,
      message: `cluster "${i.cluster.name}" (${i.cluster.server}) is unreachable: ${i.cluster.lastError ?? 'watch disconnected'}${until}`,
      retry: 'event',
    };
  }
  if (i.remote.state === 'absent') {
    return {
      action: 'blocked',
      reason: Reasons.ServiceAccountNotFound,
      message: `ServiceAccount ${sai.spec.namespace}/${sai.spec.name} not found in cluster "${i.cluster.name}"`,
      retry: 'event',
    };
  }

  const s = i.secret;
  if (!s) return { action: 'mint', why: 'no Secret yet' };
  if (!s.intact) return { action: 'mint', why: 'the Secret was changed or is incomplete' };
  if (!s.issued || !s.expiration) return { action: 'mint', why: 'the Secret has no token times' };
  if (s.fingerprint !== i.fingerprint) return { action: 'mint', why: 'the spec, server or CA changed' };
  if (i.remote.state === 'present' && s.remoteUid !== i.remote.uid) return { action: 'mint', why: 'the remote ServiceAccount was recreated' };
  if ((i.rotation ?? '') !== (s.rotation ?? '')) return { action: 'mint', why: 'rotation requested' };
  const refreshAt = refreshTime(i.key, s.issued, s.expiration, i.refreshRatio, i.maxRefreshIntervalMs);
  if (i.now >= refreshAt) return { action: 'mint', why: 'refresh due' };
  return { action: 'ready', refreshAt, expiration: s.expiration };
}
