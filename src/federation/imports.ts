// Federated imports (ADR 0022): the source's record as the target keeps it, and the ConfigMap the
// controller writes per import. Pure: the controller reads the records from its cache and applies
// what `buildFederatedConfigMap` returns.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { API_GROUP_VERSION, FEDERATED_CONFIGMAP_KEYS, FEDERATED_SOURCE_KEYS, IMPORT_KIND, IMPORT_LABEL, IMPORT_NAME_ANNOTATION, SECRET_KEYS } from '../constants.js';
import { configMapNameForImport, importLabelValue } from '../naming.js';
import { buildKubeconfig, secretDataHash } from '../secret.js';

/** What a federated source record says: where the source is, its CA, and the audience it accepts. */
export interface FederatedSource {
  server: string;
  caPem: string;
  audience: string;
}

/** A record's ConfigMap data, read: the source, or what is wrong with it. */
type ParsedFederatedSource = { ok: true; source: FederatedSource } | { ok: false; problems: string[] };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

function serverProblem(server: string): string | undefined {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return `${FEDERATED_SOURCE_KEYS.server} is not a URL`;
  }
  if (url.protocol !== 'https:') return `${FEDERATED_SOURCE_KEYS.server} must be an https URL (is ${url.protocol}//…)`;
  return undefined;
}

/** Reads a federated source record's data (`server`, `ca.crt`, `audience`); never throws. */
export function parseFederatedSource(data: Record<string, string> | undefined): ParsedFederatedSource {
  const get = (k: string) => data?.[k]?.trim() ?? '';
  const server = get(FEDERATED_SOURCE_KEYS.server);
  const caPem = get(FEDERATED_SOURCE_KEYS.caCrt);
  const audience = get(FEDERATED_SOURCE_KEYS.audience);
  const problems: string[] = [];
  if (server === '') problems.push(`${FEDERATED_SOURCE_KEYS.server} is missing or empty`);
  else {
    const p = serverProblem(server);
    if (p) problems.push(p);
  }
  if (caPem === '') problems.push(`${FEDERATED_SOURCE_KEYS.caCrt} is missing or empty`);
  else if (!PEM_CERTIFICATE.test(caPem)) problems.push(`${FEDERATED_SOURCE_KEYS.caCrt} holds no PEM certificate`);
  if (audience === '') problems.push(`${FEDERATED_SOURCE_KEYS.audience} is missing or empty`);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, source: { server: server.replace(/\/$/, ''), caPem: `${caPem}\n`, audience } };
}

interface FederatedConfigMapOptions {
  importName: string;
  importNamespace: string;
  importUid: string;
  source: FederatedSource;
}

/** The data of a federated import's ConfigMap: what the pod reads beside its projected token. */
function federatedData(o: FederatedConfigMapOptions): Record<string, string> {
  const config = buildKubeconfig({
    name: o.importName,
    server: o.source.server,
    // Relative to the kubeconfig's directory (the mount), as kubectl and client-go resolve them.
    ca: { file: FEDERATED_CONFIGMAP_KEYS.caCrt },
    namespace: o.importNamespace,
    auth: { tokenFile: SECRET_KEYS.token },
  });
  return {
    [FEDERATED_CONFIGMAP_KEYS.caCrt]: o.source.caPem,
    [FEDERATED_CONFIGMAP_KEYS.server]: o.source.server,
    [FEDERATED_CONFIGMAP_KEYS.namespace]: o.importNamespace,
    [FEDERATED_CONFIGMAP_KEYS.config]: config,
    [FEDERATED_CONFIGMAP_KEYS.audience]: o.source.audience,
  };
}

/**
 * The ConfigMap of a federated import: deterministic name, the import label (and full-name
 * annotation), a controller owner reference to the import, and the data the webhook mounts.
 */
export function buildFederatedConfigMap(o: FederatedConfigMapOptions): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: configMapNameForImport(o.importName),
      namespace: o.importNamespace,
      labels: { [IMPORT_LABEL]: importLabelValue(o.importName) },
      annotations: { [IMPORT_NAME_ANNOTATION]: o.importName },
      ownerReferences: [{ apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: o.importName, uid: o.importUid, controller: true, blockOwnerDeletion: true }],
    },
    data: federatedData(o),
  };
}

/** A stable hash of a ConfigMap's data, to tell whether the one in the cache is the one wanted. */
export function configMapDataHash(data: Record<string, string> | undefined): string {
  return secretDataHash(data);
}
