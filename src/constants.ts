/** Names fixed by the compatibility contract (SPEC §2). Change none of them. */
export const API_GROUP = 'multicluster.admiralty.io';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;
export const IMPORT_KIND = 'ServiceAccountImport';
export const IMPORT_PLURAL = 'serviceaccountimports';

/** Pod annotation: comma-separated import names to mount. */
export const IMPORT_ANNOTATION = 'multicluster.admiralty.io/service-account-import.name';
/** Import annotation: set or change its value to make the controller mint a new token now. */
export const ROTATE_ANNOTATION = 'multicluster.admiralty.io/rotate';
/** Label on generated Secrets: the import that owns it. */
export const IMPORT_LABEL = 'multicluster.admiralty.io/service-account-import.name';
/**
 * Annotation on generated Secrets holding the import's full name. The label's value is the name
 * only when it fits a label value (≤ 63 characters); longer names get a hash-derived label value
 * (`importLabelValue`, src/naming.ts) and are read back from this annotation.
 */
export const IMPORT_NAME_ANNOTATION = IMPORT_LABEL;

/** Where the project is installed; imports here are registrations of source clusters. */
export const INSTALL_NAMESPACE = 'multicluster-service-account';

/** Root of the mounted imports in a pod: `<root>/<import-name>/`. */
export const MOUNT_ROOT = '/var/run/secrets/admiralty.io/serviceaccountimports';

/** Keys of the generated Secret (SPEC §6). */
export const SECRET_KEYS = {
  caCrt: 'ca.crt',
  namespace: 'namespace',
  token: 'token',
  server: 'server',
  config: 'config',
} as const;

/**
 * Label on a federated source record: a ConfigMap in the install namespace (written by `kubemcsa
 * federate`) whose value is the source's name, the `spec.clusterName` of federated imports
 * (ADR 0022); a name longer than 63 characters is hashed in the label and kept whole in an
 * annotation of the same key.
 */
export const FEDERATED_SOURCE_LABEL = 'multicluster.admiralty.io/federated-source';

/** Keys of a federated source record's data. */
export const FEDERATED_SOURCE_KEYS = {
  server: 'server',
  caCrt: 'ca.crt',
  audience: 'audience',
} as const;

/** Keys of the ConfigMap the controller keeps per federated import (mounted with the projected token as `token`). */
export const FEDERATED_CONFIGMAP_KEYS = {
  caCrt: 'ca.crt',
  server: 'server',
  namespace: 'namespace',
  config: 'config',
  audience: 'audience',
} as const;

/** Field manager for server-side apply by the CLI. */
export const CLI_FIELD_MANAGER = 'kubemcsa';
/** Field manager for the controller's writes. */
export const CONTROLLER_FIELD_MANAGER = 'multicluster-service-account-controller';
