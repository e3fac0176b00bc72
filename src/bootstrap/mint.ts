// When bootstrap needs a new token in the registration Secret. Minting is a change (a new token,
// a new resourceVersion), so a re-run mints only when the Secret cannot be trusted as it is.
import { SECRET_KEYS } from '../constants.js';
import { SecretAnnotations } from '../secret.js';
import { isReady, readyCondition, type ImportStatus } from '../api/import.js';
import { DEFAULT_REFRESH_RATIO, refreshTime } from '../controller/decide.js';

/** The parts of an existing Secret the decision reads. */
export interface ExistingSecret {
  annotations?: Record<string, string>;
  /** Data keys present (values are never needed for the decision). */
  dataKeys: string[];
  ownerUids: string[];
}

interface MintWant {
  /** `namespace/name` of the registration (the refresh jitter is per import, as the controller's). */
  key: string;
  fingerprint: string;
  importUid: string;
  remoteUid: string;
}

type MintDecision = { mint: false } | { mint: true; reason: string };

function parseTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Mint when the Secret is missing or incomplete, belongs to another import object, holds a token
 * of another (recreated) importer ServiceAccount or for another spec/server/CA (fingerprint), or
 * its token is due for refresh by the controller's own rule (`refreshTime` at the default ratio:
 * about 60 % of its lifetime), so kubemcsa and the controller never disagree about a token.
 */
export function mintDecision(existing: ExistingSecret | undefined, want: MintWant, now: Date): MintDecision {
  if (existing === undefined) return { mint: true, reason: 'the Secret does not exist' };
  const missing = Object.values(SECRET_KEYS).filter((k) => !existing.dataKeys.includes(k));
  if (missing.length > 0) return { mint: true, reason: `the Secret lacks ${missing.join(', ')}` };
  if (!existing.ownerUids.includes(want.importUid)) return { mint: true, reason: 'the Secret is not owned by this registration' };
  const a = existing.annotations ?? {};
  if (a[SecretAnnotations.fingerprint] !== want.fingerprint) return { mint: true, reason: 'the source server, CA or spec changed' };
  if (a[SecretAnnotations.remoteUid] !== want.remoteUid) return { mint: true, reason: 'the importer ServiceAccount was recreated' };
  const issued = parseTime(a[SecretAnnotations.issued]);
  const expiration = parseTime(a[SecretAnnotations.expiration]);
  if (issued === undefined || expiration === undefined || expiration <= issued) return { mint: true, reason: 'the token expiry is unknown' };
  if (expiration <= now.getTime()) return { mint: true, reason: 'the token has expired' };
  if (refreshTime(want.key, new Date(issued), new Date(expiration), DEFAULT_REFRESH_RATIO) <= now) return { mint: true, reason: 'the token is due for refresh' };
  return { mint: false };
}

/**
 * Whether an import is Ready *and* the status is current: it describes this generation and, when
 * bootstrap has just written a new token, a token at least as new (a Ready=True left from before
 * would otherwise end `--wait` before the controller has even seen the new Secret).
 */
export function readyAndCurrent(sai: { metadata: { generation?: number }; status?: ImportStatus }, mintedExpiration: Date | undefined): boolean {
  const status = sai.status;
  if (!status || !isReady({ metadata: sai.metadata, status })) return false;
  const c = readyCondition({ status });
  const generation = sai.metadata.generation;
  if (generation !== undefined && c?.observedGeneration !== undefined && c.observedGeneration < generation) return false;
  if (mintedExpiration === undefined) return true;
  const seen = status.expirationTimestamp === undefined ? NaN : Date.parse(status.expirationTimestamp);
  // Timestamps in status are whole seconds.
  return seen >= mintedExpiration.getTime() - 1000;
}
