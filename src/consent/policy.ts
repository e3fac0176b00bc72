// Target-side consent: which local namespace may use which remote identity, for how long and for
// which audiences. The rules are the cluster admin's (cluster-scoped
// ServiceAccountImportPolicy objects); without any, an import in namespace N may only name remote
// namespace N, for at most DEFAULT_MAX_EXPIRATION_SECONDS, with the source API server's own
// audience. Pure: the controller evaluates this before it asks the source for anything.
import * as t from 'io-ts';
import { INSTALL_NAMESPACE } from '../constants.js';
import { DEFAULT_EXPIRATION_SECONDS, MAX_EXPIRATION_SECONDS } from '../api/import.js';
import { NEVER_IMPORTABLE_NAMESPACES } from './grants.js';

export const POLICY_PLURAL = 'serviceaccountimportpolicies';

/** The longest token a tenant import gets when no policy sets `maxExpirationSeconds` (24 h). */
const DEFAULT_MAX_EXPIRATION_SECONDS = 86_400;

const PolicyMapping = t.intersection([
  t.type({ namespace: t.string, remoteNamespace: t.string }),
  t.partial({ serviceAccounts: t.array(t.string), audiences: t.array(t.string) }),
]);
type PolicyMapping = t.TypeOf<typeof PolicyMapping>;

const PolicySpec = t.partial({
  clusters: t.array(t.string),
  namespaceSameness: t.boolean,
  maxExpirationSeconds: t.number,
  mappings: t.array(PolicyMapping),
});
type PolicySpec = t.TypeOf<typeof PolicySpec>;

export const ImportPolicy = t.intersection([
  t.type({ metadata: t.type({ name: t.string }) }),
  t.partial({ spec: PolicySpec }),
]);
export type ImportPolicy = t.TypeOf<typeof ImportPolicy>;

/** What the policy is asked about: one import. */
interface PolicyQuery {
  /** The import's own namespace (local). */
  namespace: string;
  clusterName: string;
  remoteNamespace: string;
  remoteName: string;
  /** As written in the spec (undefined: the default). */
  expirationSeconds?: number;
  audiences?: string[];
}

export type PolicyVerdict =
  | { allowed: true; expirationSeconds: number; audiences: string[] }
  | { allowed: false; message: string };

/** Imports in the install namespace are registrations of source clusters, made by the cluster admin. */
export function isRegistration(namespace: string, installNamespace = INSTALL_NAMESPACE): boolean {
  return namespace === installNamespace;
}

function applies(p: ImportPolicy, cluster: string): boolean {
  const clusters = p.spec?.clusters;
  return clusters === undefined || clusters.length === 0 || clusters.includes(cluster);
}

const names = (ps: ImportPolicy[]) => ps.map((p) => p.metadata.name).sort().join(', ');

/**
 * The lifetime an import gets under the policies of its cluster: the requested one (else the
 * default) up to the lowest of their caps; a request over the cap is refused, not shortened.
 */
function lifetimeUnder(mine: ImportPolicy[], requested: number | undefined, where: string): { expirationSeconds: number } | { refused: string } {
  const caps = mine.map((p) => p.spec?.maxExpirationSeconds).filter((n): n is number => n !== undefined);
  const cap = caps.length > 0 ? Math.min(...caps) : DEFAULT_MAX_EXPIRATION_SECONDS;
  if (requested !== undefined && requested > cap) {
    const capSource = caps.length > 0 ? `maxExpirationSeconds of ServiceAccountImportPolicy ${names(mine.filter((p) => p.spec?.maxExpirationSeconds === cap))}` : 'the default maximum';
    return { refused: `${where}: expirationSeconds ${requested} is over ${cap} (${capSource})` };
  }
  return { expirationSeconds: Math.min(requested ?? DEFAULT_EXPIRATION_SECONDS, cap) };
}

/**
 * The verdict for one import under `policies` (all of them; the ones for other clusters are
 * ignored). A registration is the cluster admin's own object and is judged by the schema alone.
 */
export function evaluatePolicy(q: PolicyQuery, policies: readonly ImportPolicy[], installNamespace = INSTALL_NAMESPACE): PolicyVerdict {
  const requested = q.expirationSeconds;
  const audiences = q.audiences ?? [];
  if (isRegistration(q.namespace, installNamespace)) {
    return { allowed: true, expirationSeconds: Math.min(requested ?? DEFAULT_EXPIRATION_SECONDS, MAX_EXPIRATION_SECONDS), audiences };
  }
  const where = `import in namespace ${q.namespace} of ServiceAccount ${q.remoteNamespace}/${q.remoteName} of cluster "${q.clusterName}"`;
  const never = [...NEVER_IMPORTABLE_NAMESPACES, installNamespace];
  if (never.includes(q.remoteNamespace)) {
    return { allowed: false, message: `${where}: remote namespace ${q.remoteNamespace} is never importable (it holds the cluster's own and the project's identities)` };
  }
  const mine = policies.filter((p) => applies(p, q.clusterName));
  const samenessOff = mine.filter((p) => p.spec?.namespaceSameness === false);
  const sameness = q.remoteNamespace === q.namespace && samenessOff.length === 0;
  const mappings = mine.flatMap((p) =>
    (p.spec?.mappings ?? [])
      .filter((m) => m.namespace === q.namespace && m.remoteNamespace === q.remoteNamespace)
      .filter((m) => m.serviceAccounts === undefined || m.serviceAccounts.length === 0 || m.serviceAccounts.includes(q.remoteName))
      .map((m) => ({ policy: p.metadata.name, mapping: m })),
  );
  if (!sameness && mappings.length === 0) {
    const rule =
      q.remoteNamespace === q.namespace
        ? `namespace sameness is turned off for cluster "${q.clusterName}" by ServiceAccountImportPolicy ${names(samenessOff)} and no mapping allows it`
        : mine.length === 0
          ? `by default an import in namespace ${q.namespace} may only name remote namespace ${q.namespace} (namespace sameness), and no ServiceAccountImportPolicy maps it to ${q.remoteNamespace}`
          : `namespace sameness allows only remote namespace ${q.namespace}, and no mapping of ServiceAccountImportPolicy ${names(mine)} allows namespace ${q.namespace} to use ${q.remoteNamespace}/${q.remoteName}`;
    return { allowed: false, message: `${where} is not allowed by the target's policy: ${rule}` };
  }
  const lifetime = lifetimeUnder(mine, requested, where);
  if ('refused' in lifetime) return { allowed: false, message: lifetime.refused };
  const allowedAudiences = new Set(mappings.flatMap((m) => m.mapping.audiences ?? []));
  const refused = audiences.filter((a) => !allowedAudiences.has(a));
  if (refused.length > 0) {
    return {
      allowed: false,
      message:
        `${where}: audience ${refused.map((a) => JSON.stringify(a)).join(', ')} is not allowed (only the source API server's own audience is, ` +
        `unless a ServiceAccountImportPolicy mapping for this namespace lists it in audiences)`,
    };
  }
  return { allowed: true, expirationSeconds: lifetime.expirationSeconds, audiences };
}

/**
 * The verdict for a federated import (ADR 0022) in `namespace`: the pod presents its own
 * ServiceAccount, so the identity the source sees is always this namespace's — namespace sameness
 * at the target's side. A policy for the cluster that turns sameness off refuses it unless one of
 * its mappings lets the namespace use its own namespace (`namespace` = `remoteNamespace` = N);
 * `maxExpirationSeconds` caps the projected token's lifetime. Audiences are the source's, never
 * the import's. A federated import in the install namespace is the cluster admin's own.
 */
export function evaluateFederatedPolicy(q: { namespace: string; clusterName: string; expirationSeconds?: number }, policies: readonly ImportPolicy[], installNamespace = INSTALL_NAMESPACE): PolicyVerdict {
  const requested = q.expirationSeconds;
  if (isRegistration(q.namespace, installNamespace)) return { allowed: true, expirationSeconds: requested ?? DEFAULT_EXPIRATION_SECONDS, audiences: [] };
  const where = `federated import in namespace ${q.namespace} of cluster "${q.clusterName}"`;
  const mine = policies.filter((p) => applies(p, q.clusterName));
  const samenessOff = mine.filter((p) => p.spec?.namespaceSameness === false);
  const ownMapping = mine.some((p) => (p.spec?.mappings ?? []).some((m) => m.namespace === q.namespace && m.remoteNamespace === q.namespace));
  if (samenessOff.length > 0 && !ownMapping) {
    return {
      allowed: false,
      message:
        `${where} is not allowed by the target's policy: namespace sameness is turned off for cluster "${q.clusterName}" by ServiceAccountImportPolicy ${names(samenessOff)} ` +
        `and no mapping lets namespace ${q.namespace} use its own identity (namespace ${q.namespace}, remoteNamespace ${q.namespace})`,
    };
  }
  const lifetime = lifetimeUnder(mine, requested, where);
  if ('refused' in lifetime) return { allowed: false, message: lifetime.refused };
  return { allowed: true, expirationSeconds: lifetime.expirationSeconds, audiences: [] };
}
