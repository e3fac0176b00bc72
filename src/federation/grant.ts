// A grant to a federated target (ADR 0022): no importer, no anchor, no token minted in the
// source; a RoleBinding, in the source namespace of the same name as the pod's, of a ClusterRole
// to the mapped identity (`mcsa:<target>:system:serviceaccount:<ns>:<sa>`, or the namespace's
// group for --all-service-accounts). Pure: cli/lib/grant.ts performs it.
import { ALL, type Grant } from '../consent/grants.js';
import { fitObjectName, labelValueFor } from '../naming.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../bootstrap/names.js';
import type { Manifest, ObjectRef } from '../bootstrap/plan.js';
import { federatedGroups, federatedUsername } from './identity.js';

/** Label on a federated grant's RoleBinding: the target it binds identities of. */
const FEDERATED_TARGET_LABEL = 'multicluster.admiralty.io/federated-target';

const RBAC = 'rbac.authorization.k8s.io';

/** `mcsa-federated.<target>.<sa|all>.<role>` (`:` of system roles as `-`); over 253 characters: cut, plus a hash of the whole. */
function federatedBindingName(targetName: string, g: Grant, role: string): string {
  const name = `mcsa-federated.${targetName}.${g.serviceAccount === ALL ? 'all' : g.serviceAccount}.${role.replace(/[^a-z0-9.-]/g, '-')}`;
  return fitObjectName(name, `${targetName}/${g.namespace}/${g.serviceAccount}/${role}`);
}

/** The subject a federated grant binds: the mapped user, or the namespace's mapped group. */
export function federatedSubject(targetName: string, g: Grant): { apiGroup: string; kind: 'User' | 'Group'; name: string } {
  return g.serviceAccount === ALL
    ? { apiGroup: RBAC, kind: 'Group', name: federatedGroups(targetName, g.namespace)[1]! }
    : { apiGroup: RBAC, kind: 'User', name: federatedUsername(targetName, g.namespace, g.serviceAccount) };
}

/** The RoleBinding of ClusterRole `role`, in source namespace `g.namespace`, to what `g` names of `targetName`. */
export function federatedGrantBinding(targetName: string, g: Grant, role: string): Manifest {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'RoleBinding',
    metadata: {
      name: federatedBindingName(targetName, g, role),
      namespace: g.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [FEDERATED_TARGET_LABEL]: labelValueFor(targetName) },
    },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
    subjects: [federatedSubject(targetName, g)],
  };
}

/** Whether an object found under that name is a federated grant's (kubemcsa's, for a target). */
export function isFederatedGrantObject(labels: Record<string, string> | undefined): boolean {
  return labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && labels[FEDERATED_TARGET_LABEL] !== undefined;
}

/** The ClusterRole a federated grant binds, for the pre-flight. */
export function federatedRoleRef(role: string): ObjectRef {
  return { apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', name: role };
}
