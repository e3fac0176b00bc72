// The identity a source API server gives a pod of a federated target (ADR 0022): the token's
// `sub` behind a per-target prefix, and the ServiceAccount groups behind the same prefix, so no
// mapped name can collide with the source's own ServiceAccounts or `system:` users.
import { API_GROUP } from '../constants.js';

/** `mcsa:<target>:`, the prefix of every user and group the source maps from `target`'s tokens. */
export function federatedPrefix(targetName: string): string {
  return `mcsa:${targetName}:`;
}

/** The username of ServiceAccount `namespace/name` of `target` at a source: `mcsa:<target>:system:serviceaccount:<ns>:<sa>`. */
export function federatedUsername(targetName: string, namespace: string, serviceAccount: string): string {
  return `${federatedPrefix(targetName)}system:serviceaccount:${namespace}:${serviceAccount}`;
}

/** The groups of a ServiceAccount of `namespace` in `target`, at a source. */
export function federatedGroups(targetName: string, namespace: string): string[] {
  const all = `${federatedPrefix(targetName)}system:serviceaccounts`;
  return [all, `${all}:${namespace}`];
}

/** The audience a source accepts from federated targets unless told otherwise: one per source. */
export function defaultFederatedAudience(sourceName: string): string {
  return `${API_GROUP}/${sourceName}`;
}
