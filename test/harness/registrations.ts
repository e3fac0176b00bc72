// Registrations written the way `kubemcsa bootstrap` leaves them (an import in the target's install
// namespace and the Secret the controller would write for it), for suites and benches that need
// many source clusters: more registrations of one API server, each a distinct cluster to the
// controller, or registrations of sick endpoints (test/harness/sick-endpoints.ts).
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { readTokenClaims } from '../../src/jwt.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, credentialFromSecretData, mintFingerprint } from '../../src/secret.js';
import { adminKubeConfig } from './env.js';

/** What a registration holds: where the source is, how to trust it, and the importer's token there. */
export interface RegistrationCredential {
  server: string;
  caPem: string;
  token: string;
  /** The importer ServiceAccount in the source (`multicluster-service-account/<target name>` after bootstrap). */
  importer: { namespace: string; name: string };
}

const REGISTRATION_SECONDS = 24 * 3600;

/** The credential of registration `name` in cluster `target` (read with the admin identity). */
export async function readRegistration(target: string, name: string): Promise<RegistrationCredential> {
  const kc = adminKubeConfig(target);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const imp = (await custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name })) as { spec: { namespace: string; name: string } };
  const secret = await core.readNamespacedSecret({ namespace: INSTALL_NAMESPACE, name: secretNameForImport(name) });
  const cred = credentialFromSecretData(secret.data);
  if (!cred) throw new Error(`registration ${INSTALL_NAMESPACE}/${name} in ${target} holds no credential`);
  return { server: cred.server, caPem: cred.caPem, token: cred.token, importer: { namespace: imp.spec.namespace, name: imp.spec.name } };
}

/**
 * Registers `cred` in cluster `target` under `name`: the registration import and its Secret, as
 * the controller would have written it (so nothing is minted before the token's refresh time).
 * `remoteUid`: the importer's uid in the source, when known (a registration of an endpoint that
 * is no API server has none). Returns the registration's removal (the Secret goes with it).
 */
export async function register(target: string, name: string, cred: RegistrationCredential, opts: { remoteUid?: string } = {}): Promise<{ remove(): Promise<void> }> {
  const kc = adminKubeConfig(target);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const spec = { clusterName: name, namespace: cred.importer.namespace, name: cred.importer.name, expirationSeconds: REGISTRATION_SECONDS };
  const created = (await custom.createNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace: INSTALL_NAMESPACE,
    plural: IMPORT_PLURAL,
    body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', metadata: { name, namespace: INSTALL_NAMESPACE }, spec },
  })) as { metadata: { uid: string } };
  const remove = async () => {
    await custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name }).catch(() => undefined);
    await core.deleteNamespacedSecret({ namespace: INSTALL_NAMESPACE, name: secretNameForImport(name) }).catch(() => undefined);
  };
  try {
    const claims = readTokenClaims(cred.token);
    const issued = claims.issuedAt ?? new Date();
    const expiration = claims.expiresAt ?? new Date(Date.now() + 3600_000);
    await core.createNamespacedSecret({
      namespace: INSTALL_NAMESPACE,
      body: buildImportSecret({
        importName: name,
        importNamespace: INSTALL_NAMESPACE,
        importUid: created.metadata.uid,
        credential: { token: cred.token, server: cred.server, caPem: cred.caPem, namespace: INSTALL_NAMESPACE },
        issued,
        expiration,
        remoteUid: opts.remoteUid ?? claims.serviceAccountUid ?? '',
        fingerprint: mintFingerprint({ spec, server: cred.server, caPem: cred.caPem }),
      }),
    });
  } catch (e) {
    await remove();
    throw e;
  }
  return { remove };
}
