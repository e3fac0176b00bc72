// `kubemcsa kubeconfig IMPORT`: a portable kubeconfig (inline token) from an import's Secret.
import * as t from 'io-ts';
import { decodeOrThrow } from '../../src/api/decode.js';
import { readyCondition, ServiceAccountImport } from '../../src/api/import.js';
import { API_GROUP_VERSION, IMPORT_KIND } from '../../src/constants.js';
import { CliError } from '../../src/bootstrap/errors.js';
import type { KubeconfigOptions } from '../../src/bootstrap/options.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildKubeconfig, credentialFromSecretData, SecretAnnotations } from '../../src/secret.js';
import { ClusterClient } from './cluster.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';

const SecretData = t.type({
  metadata: t.partial({ annotations: t.record(t.string, t.string) }),
  data: t.union([t.record(t.string, t.string), t.undefined]),
});

export async function runImportKubeconfig(opts: KubeconfigOptions, out: Output): Promise<void> {
  const loaded = await loadCluster(opts, '--');
  const c = new ClusterClient('cluster', loaded.clusterName, loaded);
  const namespace = opts.namespace ?? loaded.namespace;
  const what = `ServiceAccountImport ${namespace}/${opts.importName}`;
  if (!(await c.servesImports())) throw new CliError(`${c.label} does not serve the ServiceAccountImport API (the CRD is not installed)`);
  const raw = await c.read({ apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: opts.importName, namespace });
  if (raw === undefined) throw new CliError(`${what} not found in ${c.label}`);
  const sai = decodeOrThrow(ServiceAccountImport, raw, `${what} in ${c.label}`);
  const secretName = secretNameForImport(opts.importName);
  const secretRaw = await c.read({ apiVersion: 'v1', kind: 'Secret', name: secretName, namespace });
  const ready = readyCondition(sai);
  const state = ready ? `Ready=${ready.status}${ready.reason ? ` (${ready.reason})` : ''}` : 'not reconciled yet';
  if (secretRaw === undefined) throw new CliError(`${what} in ${c.label} has no Secret ${secretName} yet (${state})`);
  const secret = decodeOrThrow(SecretData, secretRaw, `Secret ${namespace}/${secretName} in ${c.label}`);
  const credential = credentialFromSecretData(secret.data);
  if (credential === undefined) throw new CliError(`Secret ${namespace}/${secretName} of ${what} in ${c.label} is incomplete (${state})`);
  out.data(buildKubeconfig({ name: opts.importName, server: credential.server, ca: { pem: credential.caPem }, namespace: credential.namespace, auth: { token: credential.token } }));
  const expiration = secret.metadata.annotations?.[SecretAnnotations.expiration];
  if (expiration !== undefined && Date.parse(expiration) <= Date.now()) out.progress(`warning: the token of ${what} expired at ${expiration} (${state})`);
  else if (expiration !== undefined) out.progress(`${c.tag} token of ${what} expires ${expiration}`);
}
