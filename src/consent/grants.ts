// Source-side consent: what a grant is, how its objects are named, and how the controller reads
// the grants recorded for its importer. Pure; kubemcsa writes grants, the controller reads them.
//
// A grant of ServiceAccount `ns/sa` of a source cluster to target cluster `T` is, in the source:
//   - a Role and a RoleBinding in `ns` letting T's importer create `serviceaccounts/token` for
//     `sa` only (resourceNames), and read ServiceAccounts there;
//   - an anchor Secret in `ns` (empty): every token the controller mints under the grant is bound
//     to it (TokenRequest boundObjectRef), so deleting it on revoke stops those tokens at once;
//   - a record on the importer ServiceAccount (an annotation `ns/sa`), which the controller
//     watches: it is how the controller learns which identities it may ask for and notices a
//     revoke within a second.
// A namespace grant (`ns/*`) is the same without resourceNames; a cluster-wide grant (`*/*`) is a
// ClusterRoleBinding, has no anchor (tokens minted under it live until they expire) and never
// covers kube-system or the install namespace.
import { INSTALL_NAMESPACE } from '../constants.js';
import { shortHash } from '../naming.js';

/** Annotations on the importer ServiceAccount recording one grant each: `<prefix>/g-<hash>` = `ns/sa`. */
const GRANT_ANNOTATION_PREFIX = 'grants.multicluster.admiralty.io/';
/** Label on grant objects (Role, RoleBinding, anchor): the granted ServiceAccount, or `all`. */
export const GRANT_LABEL = 'multicluster.admiralty.io/grant';
/** `*`: every ServiceAccount of the namespace (namespace grant) or of every namespace (cluster-wide). */
export const ALL = '*';

/** Remote namespaces no tenant import may name, whatever is granted. */
export const NEVER_IMPORTABLE_NAMESPACES: readonly string[] = ['kube-system', INSTALL_NAMESPACE];

export type GrantScope = 'serviceaccount' | 'namespace' | 'cluster';

export interface Grant {
  /** Source namespace, or `*` for a cluster-wide grant. */
  namespace: string;
  /** ServiceAccount name, or `*`. */
  serviceAccount: string;
  /**
   * The UID of the grant's anchor Secret, as recorded by kubemcsa: tokens are bound to that very
   * object, and a grant revoked then given again (a new anchor) is a new grant.
   */
  anchorUid?: string;
}

export function grantScope(g: Grant): GrantScope {
  if (g.namespace === ALL) return 'cluster';
  return g.serviceAccount === ALL ? 'namespace' : 'serviceaccount';
}

export function describeGrant(g: Grant): string {
  switch (grantScope(g)) {
    case 'cluster':
      return 'every ServiceAccount of every namespace (cluster-wide)';
    case 'namespace':
      return `every ServiceAccount in namespace ${g.namespace}`;
    default:
      return `ServiceAccount ${g.namespace}/${g.serviceAccount}`;
  }
}

/** The annotation key recording `g` on the importer ServiceAccount. */
export function grantAnnotationKey(g: Grant): string {
  return `${GRANT_ANNOTATION_PREFIX}g-${shortHash(`${g.namespace}/${g.serviceAccount}`, 16)}`;
}

/** `ns/sa`, plus `@<anchor uid>` when the grant has an anchor. */
export function grantAnnotationValue(g: Grant): string {
  return `${g.namespace}/${g.serviceAccount}${g.anchorUid ? `@${g.anchorUid}` : ''}`;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const UID = /^[0-9a-f-]{1,64}$/;

/** The grants recorded in an importer's annotations; malformed records are ignored (never widened). */
export function parseGrants(annotations: Record<string, string> | undefined): Grant[] {
  const out: Grant[] = [];
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (!k.startsWith(GRANT_ANNOTATION_PREFIX)) continue;
    const [what = '', anchorUid, extraAt] = v.split('@');
    const [namespace, serviceAccount, extra] = what.split('/');
    if (namespace === undefined || serviceAccount === undefined || extra !== undefined || extraAt !== undefined) continue;
    const g: Grant = { namespace, serviceAccount };
    if (grantAnnotationKey(g) !== k) continue; // a record must sit under its own key
    if (namespace === ALL ? serviceAccount !== ALL : !NAME.test(namespace) || (serviceAccount !== ALL && !NAME.test(serviceAccount))) continue;
    if (anchorUid !== undefined && !UID.test(anchorUid)) continue;
    out.push(anchorUid ? { ...g, anchorUid } : g);
  }
  return out;
}

/**
 * Name of a grant's Role, RoleBinding and anchor Secret in the source (or of its
 * ClusterRoleBinding when cluster-wide): readable, unique per (target, grant) thanks to the hash
 * of both, and at most 253 characters.
 */
export function grantObjectName(target: string, g: Grant): string {
  const hash = shortHash(`${target}\n${g.namespace}/${g.serviceAccount}`, 8);
  const what = g.serviceAccount === ALL ? 'all' : g.serviceAccount;
  const base = `mcsa-grant.${target}.${what}`.slice(0, 253 - hash.length - 1).replace(/[-.]+$/, '');
  return `${base}.${hash}`;
}

/** The label value for a grant's ServiceAccount (`all` for namespace and cluster-wide grants). */
export function grantLabelValue(g: Grant): string {
  if (g.serviceAccount === ALL) return 'all';
  return g.serviceAccount.length <= 63 ? g.serviceAccount : `${g.serviceAccount.slice(0, 54).replace(/[-.]+$/, '')}-${shortHash(g.serviceAccount, 8)}`;
}

/**
 * Which grant covers ServiceAccount `namespace/name`: the narrowest one (a ServiceAccount grant,
 * then a namespace grant, then a cluster-wide one), since revoking the narrow one must stop the
 * tokens minted under it. A cluster-wide grant never covers the never-importable namespaces.
 */
export function coveringGrant(grants: readonly Grant[], namespace: string, name: string): Grant | undefined {
  return (
    grants.find((g) => g.namespace === namespace && g.serviceAccount === name) ??
    grants.find((g) => g.namespace === namespace && g.serviceAccount === ALL) ??
    (NEVER_IMPORTABLE_NAMESPACES.includes(namespace) ? undefined : grants.find((g) => g.namespace === ALL))
  );
}

/** The anchor Secret a token minted under `g` is bound to (none for a cluster-wide grant). */
export function anchorFor(target: string, g: Grant): { namespace: string; name: string; uid?: string } | undefined {
  if (grantScope(g) === 'cluster') return undefined;
  return { namespace: g.namespace, name: grantObjectName(target, g), ...(g.anchorUid ? { uid: g.anchorUid } : {}) };
}
