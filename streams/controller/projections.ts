import * as t from 'io-ts';
import { decodeOrThrow } from '../../src/api/decode.js';
import { parseGrants, type Grant } from '../../src/consent/grants.js';
import { ServiceAccountImport, slimImport } from '../../src/api/import.js';
import { ImportPolicy } from '../../src/consent/policy.js';
import { API_GROUP_VERSION, FEDERATED_SOURCE_KEYS, IMPORT_KIND, ROTATE_ANNOTATION } from '../../src/constants.js';
import { configMapDataHash } from '../../src/federation/imports.js';
import { federatedSourceNameOf } from '../../src/federation/record.js';
import { credentialFromSecretData, importNameOfSecret, secretDataHash, SecretAnnotations, type ImportCredential } from '../../src/secret.js';

/** An import as the controller caches it: what decisions need, nothing more. */
export interface CachedImport {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  resourceVersion: string;
  rotation?: string;
  deleting: boolean;
  sai: ServiceAccountImport;
}

/** A ServiceAccountImportPolicy as cached (decoded; the schema has validated it). */
export type CachedPolicy = ImportPolicy & { resourceVersion: string; name: string };

export function projectPolicy(raw: unknown): CachedPolicy {
  const p = decodeOrThrow(ImportPolicy, raw, 'ServiceAccountImportPolicy');
  const rv = (raw as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
  return { metadata: { name: p.metadata.name }, ...(p.spec ? { spec: p.spec } : {}), resourceVersion: typeof rv === 'string' ? rv : '', name: p.metadata.name };
}

export function projectImport(raw: unknown): CachedImport {
  const sai = decodeOrThrow(ServiceAccountImport, raw, 'ServiceAccountImport');
  const m = sai.metadata;
  const slim = slimImport(sai);
  return {
    namespace: m.namespace ?? '',
    name: m.name,
    uid: m.uid ?? '',
    generation: m.generation ?? 0,
    resourceVersion: m.resourceVersion ?? '',
    rotation: m.annotations?.[ROTATE_ANNOTATION],
    deleting: m.deletionTimestamp !== undefined && m.deletionTimestamp !== null,
    sai: slim,
  };
}

/** A Secret or a ConfigMap: metadata, owners and `data` (string values). */
const RawDataObject = t.intersection([
  t.type({
    metadata: t.intersection([
      t.type({ name: t.string, namespace: t.string }),
      t.partial({
        resourceVersion: t.string,
        labels: t.record(t.string, t.string),
        annotations: t.record(t.string, t.string),
        ownerReferences: t.array(t.intersection([t.type({ apiVersion: t.string, kind: t.string, name: t.string, uid: t.string }), t.partial({ controller: t.boolean })])),
      }),
    ]),
  }),
  t.partial({ data: t.union([t.record(t.string, t.string), t.null]) }),
]);

/** What the controller caches of any object it generates for an import (a Secret, a ConfigMap). */
interface CachedGenerated {
  namespace: string;
  name: string;
  resourceVersion: string;
  importName: string;
  /** UID of the import that controls it, if a ServiceAccountImport does. */
  controllerUid?: string;
  /** Controlled by something that is not a ServiceAccountImport. */
  foreignController: boolean;
}

/** A generated Secret as cached: its annotations and integrity, never its token (except registrations'). */
export interface CachedSecret extends CachedGenerated {
  dataIntact: boolean;
  annotations: Record<string, string>;
  /** Only for Secrets in the install namespace (registrations): the controller calls with it. */
  credential?: ImportCredential;
}

export function projectSecret(installNamespace: string) {
  return (raw: unknown): CachedSecret => {
    const s = decodeOrThrow(RawDataObject, raw, 'Secret');
    const m = s.metadata;
    const { controllerUid, foreignController } = controllerOf(m.ownerReferences);
    const annotations = Object.fromEntries(Object.entries(m.annotations ?? {}).filter(([k]) => Object.values(SecretAnnotations).includes(k as never)));
    const data = s.data ?? undefined;
    return {
      namespace: m.namespace,
      name: m.name,
      resourceVersion: m.resourceVersion ?? '',
      importName: importNameOfSecret(m),
      controllerUid,
      foreignController,
      dataIntact: annotations[SecretAnnotations.dataHash] === secretDataHash(data),
      annotations,
      credential: m.namespace === installNamespace ? credentialFromSecretData(data) : undefined,
    };
  };
}

/** A federated source record as cached: the source's name (its label) and the three keys read from it. */
export interface CachedFederatedRecord {
  namespace: string;
  name: string;
  resourceVersion: string;
  /** The source it is for (federatedSourceNameOf): the `spec.clusterName` of the imports that use it. */
  source: string;
  data: Record<string, string>;
}

export function projectFederatedRecord(raw: unknown): CachedFederatedRecord {
  const cm = decodeOrThrow(RawDataObject, raw, 'ConfigMap');
  const m = cm.metadata;
  const kept = Object.values(FEDERATED_SOURCE_KEYS) as string[];
  const data = Object.fromEntries(Object.entries(cm.data ?? {}).filter(([k]) => kept.includes(k)));
  return { namespace: m.namespace, name: m.name, resourceVersion: m.resourceVersion ?? '', source: federatedSourceNameOf(m), data };
}

/** A federated import's generated ConfigMap as cached: who controls it and a hash of its data. */
export interface CachedConfigMap extends CachedGenerated {
  dataHash: string;
}

export function projectConfigMap(raw: unknown): CachedConfigMap {
  const cm = decodeOrThrow(RawDataObject, raw, 'ConfigMap');
  const m = cm.metadata;
  const { controllerUid, foreignController } = controllerOf(m.ownerReferences);
  return {
    namespace: m.namespace,
    name: m.name,
    resourceVersion: m.resourceVersion ?? '',
    importName: importNameOfSecret(m),
    ...(controllerUid !== undefined ? { controllerUid } : {}),
    foreignController,
    dataHash: configMapDataHash(cm.data ?? undefined),
  };
}

/** The UID of the ServiceAccountImport controlling an object, or whether something else controls it. */
function controllerOf(refs: { apiVersion: string; kind: string; uid: string; controller?: boolean }[] | undefined): { controllerUid?: string; foreignController: boolean } {
  const owner = refs?.find((o) => o.controller);
  const isImportOwner = owner?.kind === IMPORT_KIND && owner.apiVersion === API_GROUP_VERSION;
  return { ...(isImportOwner ? { controllerUid: owner.uid } : {}), foreignController: owner !== undefined && !isImportOwner };
}

const RawServiceAccount = t.type({
  metadata: t.intersection([t.type({ name: t.string, namespace: t.string }), t.partial({ uid: t.string, resourceVersion: t.string, annotations: t.record(t.string, t.string) })]),
});

export interface CachedServiceAccount {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  /** Grants recorded on it (only importer ServiceAccounts carry any; src/consent/grants.ts). */
  grants?: Grant[];
}

export function projectServiceAccount(raw: unknown): CachedServiceAccount {
  const sa = decodeOrThrow(RawServiceAccount, raw, 'ServiceAccount');
  const grants = parseGrants(sa.metadata.annotations);
  return {
    namespace: sa.metadata.namespace,
    name: sa.metadata.name,
    uid: sa.metadata.uid ?? '',
    resourceVersion: sa.metadata.resourceVersion ?? '',
    ...(grants.length > 0 ? { grants } : {}),
  };
}
