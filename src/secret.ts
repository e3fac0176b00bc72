import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { API_GROUP, API_GROUP_VERSION, IMPORT_KIND, IMPORT_LABEL, IMPORT_NAME_ANNOTATION, SECRET_KEYS } from './constants.js';
import type { TokenImportSpec } from './api/import.js';
import { DEFAULT_EXPIRATION_SECONDS } from './api/import.js';
import { importLabelValue, mountPathForImport, secretNameForImport } from './naming.js';

/** Annotations on the generated Secret: what the token in it was minted for, and when it expires. */
export const SecretAnnotations = {
  expiration: `${API_GROUP}/token-expiration`,
  issued: `${API_GROUP}/token-issued`,
  remoteUid: `${API_GROUP}/remote-service-account-uid`,
  fingerprint: `${API_GROUP}/fingerprint`,
  /** The import's rotation annotation value the token was minted for. */
  rotation: `${API_GROUP}/rotation`,
  /** Hash of `data` as written, so a hand edit is noticed without caching the token. */
  dataHash: `${API_GROUP}/data-hash`,
} as const;

/** A stable hash of a Secret's data map (base64 values), order-independent. */
export function secretDataHash(data: Record<string, string> | undefined): string {
  const entries = Object.entries(data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 32);
}

/** How a kubeconfig user authenticates: a token file re-read on rotation, or an inline token. */
type KubeconfigAuth = { tokenFile: string } | { token: string };

export interface KubeconfigOptions {
  /** Name of the single cluster, user and context (the import name). */
  name: string;
  server: string;
  /** The CA inline (`certificate-authority-data`), or a file beside the kubeconfig (`certificate-authority`, relative paths taken from the kubeconfig's directory). */
  ca: { pem: string } | { file: string };
  namespace: string;
  auth: KubeconfigAuth;
}

/**
 * A kubeconfig (YAML) with one cluster, user and context, all named `name`, CA inline. Written
 * from a template (every value a JSON string, which YAML reads as a double-quoted scalar): the
 * controller builds one per token, and a general YAML emitter costs far more.
 */
export function buildKubeconfig(o: KubeconfigOptions): string {
  const q = (v: string) => JSON.stringify(v);
  const user = 'token' in o.auth ? `      token: ${q(o.auth.token)}` : `      tokenFile: ${q(o.auth.tokenFile)}`;
  const ca = 'pem' in o.ca ? `      certificate-authority-data: ${q(Buffer.from(o.ca.pem).toString('base64'))}` : `      certificate-authority: ${q(o.ca.file)}`;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `  - name: ${q(o.name)}`,
    '    cluster:',
    `      server: ${q(o.server)}`,
    ca,
    'users:',
    `  - name: ${q(o.name)}`,
    '    user:',
    user,
    'contexts:',
    `  - name: ${q(o.name)}`,
    '    context:',
    `      cluster: ${q(o.name)}`,
    `      user: ${q(o.name)}`,
    `      namespace: ${q(o.namespace)}`,
    `current-context: ${q(o.name)}`,
    'preferences: {}',
    '',
  ].join('\n');
}

/** Everything the generated Secret holds for one import. */
export interface ImportCredential {
  server: string;
  caPem: string;
  token: string;
  /** The remote ServiceAccount's namespace. */
  namespace: string;
}

/** What the token in a Secret was minted for; a change means a new token is needed. */
interface MintFingerprintInput {
  spec: TokenImportSpec;
  server: string;
  caPem: string;
}

/** A stable hash of everything that, when it changes, invalidates the token in the Secret. */
export function mintFingerprint(i: MintFingerprintInput): string {
  const canonical = JSON.stringify([
    i.spec.clusterName,
    i.spec.namespace,
    i.spec.name,
    i.spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS,
    [...(i.spec.audiences ?? [])].sort(),
    i.server,
    i.caPem.trim(),
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

interface SecretBuildOptions {
  importName: string;
  importNamespace: string;
  importUid: string;
  credential: ImportCredential;
  issued: Date;
  expiration: Date;
  remoteUid: string;
  fingerprint: string;
  /** The import's rotation annotation value, if any. */
  rotation?: string;
  /** Mount root the kubeconfig's tokenFile points at (the pod path by default). */
  mountRoot?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/**
 * The generated Secret of SPEC §6: deterministic name, import label, controller owner reference,
 * the five keys, and a kubeconfig whose user reads the mounted token file (so clients survive
 * rotation without a restart).
 */
export function buildImportSecret(o: SecretBuildOptions): V1Secret {
  const tokenFile = `${mountPathForImport(o.importName, o.mountRoot)}/${SECRET_KEYS.token}`;
  const config = buildKubeconfig({
    name: o.importName,
    server: o.credential.server,
    ca: { pem: o.credential.caPem },
    namespace: o.credential.namespace,
    auth: { tokenFile },
  });
  const data = {
    [SECRET_KEYS.token]: b64(o.credential.token),
    [SECRET_KEYS.namespace]: b64(o.credential.namespace),
    [SECRET_KEYS.server]: b64(o.credential.server),
    [SECRET_KEYS.caCrt]: b64(o.credential.caPem),
    [SECRET_KEYS.config]: b64(config),
  };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: secretNameForImport(o.importName),
      namespace: o.importNamespace,
      labels: { [IMPORT_LABEL]: importLabelValue(o.importName) },
      annotations: {
        [IMPORT_NAME_ANNOTATION]: o.importName,
        [SecretAnnotations.issued]: o.issued.toISOString(),
        [SecretAnnotations.expiration]: o.expiration.toISOString(),
        [SecretAnnotations.remoteUid]: o.remoteUid,
        [SecretAnnotations.fingerprint]: o.fingerprint,
        // Always present (empty when no rotation was asked for): a server-side apply then
        // owns the key, so a rotation value can never be left behind by an earlier writer.
        [SecretAnnotations.rotation]: o.rotation ?? '',
        [SecretAnnotations.dataHash]: secretDataHash(data),
      },
      ownerReferences: [
        { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: o.importName, uid: o.importUid, controller: true, blockOwnerDeletion: true },
      ],
    },
    data,
  };
}

/** A Secret with only the inline-token kubeconfig and the five keys, for `kubemcsa export`. */
export function buildPortableSecret(o: { name: string; namespace?: string; credential: ImportCredential }): V1Secret {
  const config = buildKubeconfig({
    name: o.name,
    server: o.credential.server,
    ca: { pem: o.credential.caPem },
    namespace: o.credential.namespace,
    auth: { token: o.credential.token },
  });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: o.name, ...(o.namespace ? { namespace: o.namespace } : {}) },
    data: {
      [SECRET_KEYS.token]: b64(o.credential.token),
      [SECRET_KEYS.namespace]: b64(o.credential.namespace),
      [SECRET_KEYS.server]: b64(o.credential.server),
      [SECRET_KEYS.caCrt]: b64(o.credential.caPem),
      [SECRET_KEYS.config]: b64(config),
    },
  };
}

/**
 * The import a generated Secret belongs to, from its metadata: the full-name annotation, else the
 * label (Secrets written before long names were supported carry only the label, whose value was
 * then the name). Empty when neither is there.
 */
export function importNameOfSecret(meta: { labels?: Record<string, string>; annotations?: Record<string, string> } | undefined): string {
  return meta?.annotations?.[IMPORT_NAME_ANNOTATION] ?? meta?.labels?.[IMPORT_LABEL] ?? '';
}

/** Reads the credential back out of a generated Secret's data; undefined when a key is missing. */
export function credentialFromSecretData(data: Record<string, string> | undefined): ImportCredential | undefined {
  const get = (k: string) => (data?.[k] !== undefined ? Buffer.from(data[k]!, 'base64').toString('utf8') : undefined);
  const token = get(SECRET_KEYS.token);
  const server = get(SECRET_KEYS.server);
  const caPem = get(SECRET_KEYS.caCrt);
  const namespace = get(SECRET_KEYS.namespace);
  if (!token || !server || !caPem || namespace === undefined) return undefined;
  return { token, server, caPem, namespace };
}
