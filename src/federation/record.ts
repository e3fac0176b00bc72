// The federated source record (ADR 0022): a ConfigMap in the target's install namespace saying
// that source cluster S trusts this cluster's ServiceAccount issuer, where S's API server is and
// which audience it accepts. Nothing secret: `server`, `ca.crt`, `audience`. `kubemcsa federate`
// writes it; the controller reads it. Also the binding that opens issuer discovery to anonymous
// callers (the source's API server fetches discovery and JWKS without credentials).
import * as t from 'io-ts';
import { decodeOrThrow } from '../api/decode.js';
import { ObjectMeta } from '../api/import.js';
import { FEDERATED_SOURCE_LABEL, INSTALL_NAMESPACE } from '../constants.js';
import { fitObjectName, labelValueFor } from '../naming.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../bootstrap/names.js';
import type { Manifest } from '../bootstrap/plan.js';

/** Keys of the record's data. */
const RECORD_KEYS = { server: 'server', caCrt: 'ca.crt', audience: 'audience' } as const;

/** Annotation holding the source's full name (the label holds a hashed value for names over 63 characters). */
const FEDERATED_SOURCE_ANNOTATION = FEDERATED_SOURCE_LABEL;

const PREFIX = 'federated-';

/** `federated-<source>`; a name too long for an object name (253) is cut and made unique with a hash of the whole. */
export function federatedRecordName(sourceName: string): string {
  return fitObjectName(`${PREFIX}${sourceName}`, sourceName);
}

/** Label selector of every federated source record kubemcsa wrote. */
export const federatedRecordSelector = `${FEDERATED_SOURCE_LABEL},${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

interface FederatedSource {
  sourceName: string;
  /** The source API server URL as the target's pods reach it. */
  server: string;
  /** PEM of the source API server's CA. */
  caPem: string;
  audience: string;
}

/** The record's ConfigMap, for server-side apply in the target's install namespace. */
export function federatedRecordManifest(s: FederatedSource, namespace = INSTALL_NAMESPACE): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: federatedRecordName(s.sourceName),
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [FEDERATED_SOURCE_LABEL]: labelValueFor(s.sourceName) },
      annotations: { [FEDERATED_SOURCE_ANNOTATION]: s.sourceName },
    },
    data: { [RECORD_KEYS.server]: s.server, [RECORD_KEYS.caCrt]: s.caPem, [RECORD_KEYS.audience]: s.audience },
  };
}

const RecordObject = t.type({
  metadata: ObjectMeta,
  data: t.type({ [RECORD_KEYS.server]: t.string, [RECORD_KEYS.caCrt]: t.string, [RECORD_KEYS.audience]: t.string }),
});

/** The source a record is for: the annotation's full name, else the label's value (names of at most 63 characters). */
export function federatedSourceNameOf(m: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }): string {
  return m.annotations?.[FEDERATED_SOURCE_ANNOTATION] ?? m.labels?.[FEDERATED_SOURCE_LABEL] ?? m.name;
}

/** A record read back from the cluster; `where` names it in errors. */
export function decodeFederatedRecord(raw: unknown, where: string): FederatedSource & { recordName: string } {
  const r = decodeOrThrow(RecordObject, raw, where);
  return { recordName: r.metadata.name, sourceName: federatedSourceNameOf(r.metadata), server: r.data.server, caPem: r.data['ca.crt'], audience: r.data.audience };
}

/** The built-in ClusterRole that may read `/.well-known/openid-configuration` and `/openid/v1/jwks`. */
export const ISSUER_DISCOVERY_CLUSTER_ROLE = 'system:service-account-issuer-discovery';
/** The ClusterRoleBinding `--allow-anonymous-discovery` creates in the target. */
export const ANONYMOUS_DISCOVERY_BINDING = 'multicluster-service-account-anonymous-issuer-discovery';

/** Lets unauthenticated callers (the sources' API servers) read the issuer's discovery document and keys. */
export function anonymousDiscoveryBinding(): Manifest {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: ANONYMOUS_DISCOVERY_BINDING, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ISSUER_DISCOVERY_CLUSTER_ROLE },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
  };
}
