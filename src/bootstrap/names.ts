import { INSTALL_NAMESPACE } from '../constants.js';
import { dns1123SubdomainError, labelValueFor } from '../naming.js';
import { UsageError } from './errors.js';

/** Every object kubemcsa creates carries this label… */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'kubemcsa';
/** …and, in the source, this one naming the target cluster it was created for. */
const TARGET_LABEL = 'multicluster.admiralty.io/bootstrap-target';
/** In the target, the registration names its source cluster with this label. */
export const SOURCE_LABEL = 'multicluster.admiralty.io/bootstrap-source';

/** The ClusterRole shared by every importer in a source cluster. */
export const IMPORTER_CLUSTER_ROLE = 'multicluster-service-account-importer';

export { INSTALL_NAMESPACE };

/** ClusterRoleBinding (cluster-wide) or RoleBinding (per namespace) granting the importer role. */
export function importerBindingName(targetName: string): string {
  return `${IMPORTER_CLUSTER_ROLE}-${targetName}`;
}

/** Role + RoleBinding in the install namespace letting the importer mint tokens for itself. */
export function selfRoleName(targetName: string): string {
  return `${IMPORTER_CLUSTER_ROLE}-self-${targetName}`;
}

export { labelValueFor };

/** Labels of the source objects created for one target. */
export function sourceLabels(targetName: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [TARGET_LABEL]: labelValueFor(targetName) };
}

/** Label selector finding the source objects created for one target. */
export function sourceSelector(targetName: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${TARGET_LABEL}=${labelValueFor(targetName)}`;
}

/** Labels of objects shared by several targets (the install namespace, the ClusterRole). */
export const sharedLabels: Readonly<Record<string, string>> = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };

export const managedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

export function isManaged(labels: Record<string, string> | undefined): boolean {
  return labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/**
 * Checks a cluster name (given with a flag or taken from the kubeconfig): it names the importer
 * ServiceAccount and the registration, so it must be a DNS-1123 subdomain.
 */
export function validateClusterName(name: string, role: 'target' | 'source', from: 'flag' | { context: string }): string {
  const why = dns1123SubdomainError(name);
  if (why === undefined) return name;
  if (from === 'flag') throw new UsageError(`invalid --${role}-name ${JSON.stringify(name)}: a cluster name ${why} (DNS-1123 subdomain)`);
  throw new UsageError(
    `invalid ${role} cluster name ${JSON.stringify(name)} (the cluster of context ${JSON.stringify(from.context)}): it ${why} ` +
      `(DNS-1123 subdomain); rename it in the kubeconfig or pass --${role}-name`,
  );
}
